// The router: #data, #train, #run/<job>, #runs, #try, #label; each page renders into <main>.
"use strict";

(function () {
  const main = document.getElementById("page");
  let leave = null;

  async function route() {
    if (typeof leave === "function") leave();
    leave = null;
    const [name, argument] = (location.hash.slice(1) || "data").split("/");
    const page = TL.pages[name] || TL.pages.data;
    for (const link of document.querySelectorAll("nav a")) {
      link.classList.toggle("current", link.dataset.page === (name === "run" ? "runs" : name));
    }
    main.dataset.page = name;
    main.dataset.ready = "no";
    main.removeAttribute("data-percent");
    main.replaceChildren(TL.el("p", { class: "muted" }, "Loading…"));
    try {
      leave = await page(main, argument);
    } catch (error) {
      main.replaceChildren(TL.el("p", { class: "error", role: "alert" }, error.message));
    }
    main.dataset.ready = "yes";
  }

  TL.api("GET", "/api/info").then((info) => {
    document.getElementById("workspace").textContent = info.workspace;
  }).catch(() => {});
  window.addEventListener("hashchange", route);
  route();
})();

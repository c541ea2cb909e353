"""The tagging baseline remembers the training rows' spans (entities, words) or each token's
tag, and tags new rows by the longest remembered match."""

from __future__ import annotations

from tunelab.models.tag_memory import TagMemory


def test_entities_are_tagged_by_the_longest_remembered_form() -> None:
    tokens = [["New", "York", "is", "big"], ["York", "is", "old"], ["I", "like", "Paris"]]
    tags = [["B-LOC", "I-LOC", "O", "O"], ["B-PER", "O", "O"], ["O", "O", "B-LOC"]]
    memory = TagMemory("bio").fit(tokens, tags)
    assert memory.tag(["In", "New", "York", "and", "Paris"]) == [
        "O", "B-LOC", "I-LOC", "O", "B-LOC",
    ]  # fmt: skip
    assert memory.tag(["York", "Paris", "Rome"]) == ["B-PER", "B-LOC", "O"]


def test_forms_mostly_not_entities_are_not_remembered() -> None:
    tokens = [["Apple", "pie"], ["an", "apple"], ["an", "apple"], ["Apple", "shares"]]
    tags = [["O", "O"], ["O", "O"], ["O", "B-ORG"], ["B-ORG", "O"]]
    memory = TagMemory("bio").fit(tokens, tags)
    # "apple" is an entity in one of its two occurrences: kept; "Apple" in one of two: kept
    assert memory.tag(["apple", "Apple"]) == ["B-ORG", "B-ORG"]
    tokens.append(["apple", "juice"])
    tags.append(["O", "O"])  # now one of three
    assert TagMemory("bio").fit(tokens, tags).tag(["apple"]) == ["O"]


def test_the_type_is_the_commonest_and_the_scheme_is_kept() -> None:
    tokens = [["Jordan"], ["Jordan"], ["Jordan"], ["Red", "Sea", "coast"]]
    tags = [["S-PER"], ["S-LOC"], ["S-LOC"], ["B-LOC", "E-LOC", "O"]]
    memory = TagMemory("bioes").fit(tokens, tags)
    assert memory.tag(["Jordan", "Red", "Sea"]) == ["S-LOC", "B-LOC", "E-LOC"]


def test_segmentation_is_forward_maximum_matching_with_unknown_characters_alone() -> None:
    tokens = [list("中国人民"), list("中国的人")]
    tags = [["B", "E", "B", "E"], ["B", "E", "S", "S"]]
    memory = TagMemory("bmes").fit(tokens, tags)
    assert memory.tag(list("人民的中国好")) == ["B", "E", "S", "B", "E", "S"]


def test_plain_tags_are_each_tokens_commonest_else_the_commonest_overall() -> None:
    tokens = [["I", "run"], ["a", "run"], ["the", "run"], ["big", "dog"]]
    tags = [["r", "v"], ["u", "n"], ["u", "n"], ["a", "n"]]
    memory = TagMemory("plain").fit(tokens, tags)
    assert memory.tag(["I", "run", "fast"]) == ["r", "n", "n"]  # "run": n twice, v once

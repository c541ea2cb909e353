"""The web workbench, ``tunelab ui``: pages for data, training, runs, predictions and labelling
that call the same API the command line does (see :mod:`tunelab.ui.app`).

Modules, each with one job: ``workspace`` (the one folder the pages read and write, uploads),
``form`` (the training form from the config schema, its YAML and command), ``jobs`` (training
jobs in SQLite and the worker processes that run them), ``worker`` (one job's process),
``data_view`` (preview, column mapping, doctor), ``views`` (jobs and runs as the pages show
them), ``trying`` (predictions, explanations, chat), ``labelling`` (the Label page's sessions
over the journal and queue of ``tunelab label run``),
``security`` (host, token and request checks) and ``app`` (the routes). ``static/`` holds the
pages' own scripts and styles: nothing is fetched from a network.
"""

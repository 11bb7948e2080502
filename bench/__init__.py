"""The scale benchmark (issue 7): `python -m bench --campaigns N` builds a realistic data set on the
configured database and measures the four jobs against a bare-UPDATE floor and a naive ORM baseline,
single and batch spend ingestion, and the admin's campaign list; it prints a table and writes JSON
and a PNG chart (see `bench.cli` for the options and `bench.runner` for the order of the steps).

Only `bench.cli` and `bench.probe` may be imported before Django is set up: every other module
imports the models.
"""

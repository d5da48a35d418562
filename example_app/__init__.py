"""The example app: eight everyday background-task scenarios, done for real.

``from example_app.main import app`` gives the FastAPI app; ``example_app/tests/`` shows how
each scenario is tested with pytest-bgtasks. See ``example_app/README.md``.
"""

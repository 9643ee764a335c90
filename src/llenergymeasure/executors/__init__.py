"""Ways to run a study's experiments somewhere other than one after another in this process.

Each executor runs the same measurement (``core.runner.measure``) and hands the results back to
``llem run``, which saves them and prints the summary as it does for a local study.
"""

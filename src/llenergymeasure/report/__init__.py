"""``llem report``: one self-contained HTML file (and PNG charts) from results, baseline files and
pytest session files.

    inputs.py    reading the inputs, each kind recognised by its content
    timeline.py  a result's power timeline as traces and phase spans
    sweeps.py    experiments that differ in one config key
    verdicts.py  candidate against baseline: a session's records, or baseline files compared here
    charts.py    matplotlib (Agg) figures as inline SVG and PNG; the only module importing matplotlib
    html.py      the page's building blocks, every string escaped
    document.py  what the report shows, and writing it

Importing this package does not import matplotlib; drawing a report does.
"""

from llenergymeasure.report.document import write_report, write_report_from_session

__all__ = ["write_report", "write_report_from_session"]

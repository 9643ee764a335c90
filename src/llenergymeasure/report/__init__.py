"""``llem report``: one self-contained HTML file (and PNG charts) from results, baseline files and
pytest session files.

    inputs.py    reading the inputs, each kind recognised by its content
    timeline.py  a result's power timeline as traces and phase spans, windows numbered
    sweeps.py    experiments that differ in one config key
    ramps.py     the load points of a load ramp, grouped and in ramp order, and its SLO point
    verdicts.py  candidate against baseline: a session's records, or baseline files compared here
    ab.py        interleaved A/B sessions: both sides' results paired again, the paired verdict
    histories.py each experiment's saved sessions over time, each session once
    charts.py    matplotlib (Agg) figures as inline SVG and PNG; the only module importing matplotlib
    html.py      the page's building blocks, every string escaped
    document.py  what the report shows, and writing it

Paths are shown as every artefact shows them (results/display_paths.py). Importing this package
does not import matplotlib; drawing a report does.
"""

from llenergymeasure.report.document import write_report, write_report_from_session

__all__ = ["write_report", "write_report_from_session"]

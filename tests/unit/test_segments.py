"""Which saved sessions a candidate is judged against (results/segments.py), and the machine
history that feeds them newest first, reading files only as far as needed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from llenergymeasure.results.baselines import Baseline, BaselineEntry, MachineHistory, MachineInfo, Session
from llenergymeasure.results.segments import NOISE_SESSIONS, PIN_SESSIONS, select

MACHINE = MachineInfo(gpus=["NVIDIA H200"], energy_source="nvml_counter")
DAY0 = datetime(2026, 12, 1, 3, 0, tzinfo=timezone.utc)


def entry(value: float, status: str = "passed", batch: int = 8, suspect: bool = False) -> BaselineEntry:
    return BaselineEntry(experiment="x", config_hash="0" * 16, config={"model": "m", "pytorch.batch_size": batch},
                         status=status, energy_suspect=suspect,
                         repeats=[{"joules_per_token": value * f} for f in (1.0, 1.01, 0.99)])


def sessions(*entries: BaselineEntry) -> list[Session]:
    """Oldest first as given, one a night; returned newest first, as select takes them."""
    return [Session(e, DAY0 + timedelta(days=i), MACHINE, f"night-{i}") for i, e in enumerate(entries)][::-1]


def test_red_and_suspect_sessions_are_never_a_reference_but_are_counted():
    picked = select(sessions(entry(1.0), entry(1.01), entry(1.2, "regressed"), entry(1.0, suspect=True),
                             entry(1.21, "failed")), entry(1.2), k=10)
    assert [s.origin for s in picked.segment] == ["night-0", "night-1"]
    assert [s.origin for s in picked.flagged] == ["night-2", "night-3", "night-4"]
    assert picked.pin_note == "since 2026-12-01, 5 sessions"


def test_an_accept_begins_a_segment_whose_noise_reaches_back_across_it():
    history = [entry(1.0 + 0.01 * (i % 3)) for i in range(12)] + [entry(1.2, "accepted"), entry(1.21)]
    picked = select(sessions(*history), entry(1.2), k=10)
    assert [s.origin for s in picked.segment] == ["night-12", "night-13"]
    assert picked.accepted is picked.segment[0]
    assert [len(run) for run in picked.noise] == [12, 2]  # two runs: no difference across the accept
    assert picked.level == picked.segment and picked.pin == []  # the segment is still shorter than its level
    assert picked.pin_note.startswith("since accepted on 2026-12-13, 2 sessions")


def test_a_config_change_begins_a_segment_and_a_changed_candidate_is_judged_against_the_old_one():
    history = sessions(*[entry(1.0) for _ in range(3)], *[entry(0.5, batch=1) for _ in range(2)])
    assert len(select(history, entry(0.5, batch=1), k=10).segment) == 2
    old = select(sessions(*[entry(1.0) for _ in range(3)]), entry(0.5, batch=1), k=10)
    assert old.config_changed and len(old.segment) == 3 and old.pin == []


def test_the_pin_is_the_first_sessions_once_the_segment_outgrows_its_level():
    history = [entry(1.0, "accepted")] + [entry(1.0 + 0.001 * i) for i in range(1, 15)]
    picked = select(sessions(*history), entry(1.0), k=10)
    assert [s.origin for s in picked.pin] == [f"night-{i}" for i in range(PIN_SESSIONS)]
    assert [s.origin for s in picked.level] == [f"night-{i}" for i in range(5, 15)]
    reference = picked.reference("joules_per_token")
    assert len(reference.pin) == PIN_SESSIONS and reference.pin_note == "since accepted on 2026-12-01, 15 sessions"


def test_the_noise_window_holds_the_newest_sessions_and_the_walk_stops_there():
    consumed = []

    def newest_first():
        for session in sessions(*[entry(1.0 + 0.001 * (i % 7), "accepted" if i == 40 else "passed")
                                  for i in range(100)]):
            consumed.append(session)
            yield session

    picked = select(newest_first(), entry(1.0), k=10)
    assert len(picked.segment) == 60  # night 40's accept began it: read whole, for its pin
    assert sum(len(run) for run in picked.noise) == NOISE_SESSIONS
    assert len(consumed) == 61  # the segment, and the one session that closed it


def test_a_missing_metric_leaves_its_sessions_out_and_none_is_nothing_to_compare():
    unmeasured = BaselineEntry(experiment="x", config_hash="0" * 16, config={"model": "m", "pytorch.batch_size": 8},
                               repeats=[{"joules_per_token": None}])
    picked = select(sessions(entry(1.0), unmeasured, entry(1.01)), entry(1.0), k=10)
    reference = picked.reference("joules_per_token")
    assert len(reference.level) == 2 and [len(run) for run in reference.noise] == [2]
    assert select(sessions(unmeasured), entry(1.0), k=10).reference("joules_per_token") is None


def test_no_reference_session_selects_nothing():
    assert select(sessions(entry(1.0, "regressed")), entry(1.0), k=10) is None
    assert select([], entry(1.0), k=10) is None
    with pytest.raises(ValueError):
        select([], entry(1.0), k=0)


def test_machine_history_reads_files_newest_first_only_as_far_as_asked(tmp_path):
    for night in range(5):
        baseline = Baseline(created_at=DAY0 + timedelta(days=night), machine=MACHINE, entries={"k": entry(1.0)})
        baseline.save(tmp_path / ".llem" / "baselines" / MACHINE.key / f"2026120{night + 1}T030000Z.json")
    (tmp_path / ".llem" / "baselines" / MACHINE.key / "20261130T030000Z.json").write_text("{not json")
    history = MachineHistory(tmp_path, MACHINE.key)
    newest = next(history.sessions("k", "x"))
    assert newest.origin == "20261205T030000Z.json" and len(history._loaded) == 1
    assert [s.origin for s in history.sessions("k", "x")][-1] == "20261201T030000Z.json"
    assert len(history.unreadable) == 1 and "20261130T030000Z.json: not a readable baseline file" in history.unreadable[0]

"""scripts/check_fwd_bars.py: issue 4's bars on a saved benchmark run."""
import importlib.util
import pathlib

from fa3.bench import BenchRecord

_PATH = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "check_fwd_bars.py"
_spec = importlib.util.spec_from_file_location("check_fwd_bars", _PATH)
bars = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bars)


def _rec(impl, hdim, causal, seqlen, tflops):
    return BenchRecord(impl, "fwd", "bf16", hdim, seqlen, seqlen, 16384 // seqlen, 2048 // hdim, 2048 // hdim,
                       causal, 1.0, tflops, "GPU", "d", "c")


def _run(ratio_of):
    out = []
    for (hdim, causal, seqlen), bar in bars.BARS.items():
        out += [_rec("sdpa-cudnn", hdim, causal, seqlen, 500.0),
                _rec("fa3", hdim, causal, seqlen, 500.0 * ratio_of(hdim, causal, seqlen, bar))]
    return out


def test_all_bars_met():
    lines, ok = bars.check(_run(lambda h, c, s, bar: bar + 0.001))
    assert ok and len(lines) == 1 + len(bars.BARS)
    assert all(line.endswith("yes") for line in lines[1:])


def test_a_missed_bar_and_a_missing_row_fail():
    lines, ok = bars.check(_run(lambda h, c, s, bar: bar - 0.01 if (h, c, s) == (128, False, 16384) else bar))
    assert not ok
    assert [line for line in lines if line.endswith("NO")] == [
        " 128  False  16384   545.0      500.0  1.090  1.10  NO"]
    records = [r for r in _run(lambda h, c, s, bar: bar) if not (r.hdim == 64 and r.causal)]
    lines, ok = bars.check(records)
    assert not ok and any(line.startswith("  64   True  16384     n/a") for line in lines)


def test_against_the_committed_stream_k_run(tmp_path):
    # The fb089fe run measured non-causal only: its causal rows are missing, so it cannot pass.
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    run = path / "2026-11-23_h100_fwd_bf16_stream_k_fb089fe.json"
    assert bars.main([str(run)]) == 1

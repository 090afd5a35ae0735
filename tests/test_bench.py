"""The benchmark tool: FLOP formula, sweep, ratio and table logic, outputs; a real run on GPU."""
import json
import re

import pytest
import torch

from fa3._timing import attention_flops
from fa3.bench import BenchRecord, format_table, main, paper_configs, plot, ratio_to_best_peer, time_interleaved


def test_flop_formula():
    assert attention_flops(2, 16, 1024, 1024, 128, False) == 4 * 2 * 16 * 1024 * 1024 * 128
    assert attention_flops(2, 16, 1024, 1024, 128, True) == 2 * 2 * 16 * 1024 * 1024 * 128
    assert attention_flops(1, 1, 10, 20, 64, False, mode="bwd") == 2.5 * 4 * 10 * 20 * 64
    with pytest.raises(ValueError, match=r"^mode must be one of fwd, bwd, fwd\+bwd, got 'x'$"):
        attention_flops(1, 1, 1, 1, 64, False, mode="x")


def test_paper_configs_keep_16k_tokens_and_hidden_2048():
    configs = paper_configs([64, 256], [512, 16384], [False, True])
    assert len(configs) == 8
    for batch, seqlen, nheads, hdim, _ in configs:
        assert batch * seqlen == 16384 and nheads * hdim == 2048


def _rec(impl, tflops, seqlen=1024, causal=False):
    ms = None if tflops is None else 1.0
    return BenchRecord(impl, "fwd", "bf16", 128, seqlen, seqlen, 16, 16, 16, causal, ms, tflops, "GPU", "d", "c",
                       None if tflops else "RuntimeError: no kernel")


def test_ratio_and_table():
    records = [_rec("fa3", 600.0), _rec("sdpa-cudnn", 500.0), _rec("sdpa-flash", 400.0),
               _rec("fa3", 300.0, seqlen=512), _rec("sdpa-cudnn", None, seqlen=512), _rec("sdpa-flash", 200.0, 512)]
    ratios = ratio_to_best_peer(records)
    assert ratios[(128, False, 1024)] == pytest.approx(1.2)
    assert ratios[(128, False, 512)] == pytest.approx(1.5)  # a peer that could not run is left out
    ablation = ratio_to_best_peer([_rec("fa3", 600.0), _rec("fa3-serial", 700.0), _rec("sdpa-cudnn", 500.0)])
    assert ablation[(128, False, 1024)] == pytest.approx(1.2)  # fa3's own variants are not peers
    table = format_table(records)
    assert "fa3/best" in table and "1.200" in table and "n/a" in table
    assert "n/a: sdpa-cudnn: RuntimeError: no kernel" in table


def test_fp8_peers_and_fp8_ratio_column():
    """A 16-bit fa3 is never measured against cuDNN's FP8 attention; the FP8 kernel is measured
    against every peer, and the table gets its own ratio column."""
    records = [_rec("fa3", 600.0), _rec("fa3-fp8", 900.0), _rec("cudnn-fp8", 800.0), _rec("sdpa-cudnn", 500.0)]
    assert ratio_to_best_peer(records)[(128, False, 1024)] == pytest.approx(1.2)
    assert ratio_to_best_peer(records, "fa3-fp8")[(128, False, 1024)] == pytest.approx(1.125)
    without_fp8_peer = [r for r in records if r.impl != "cudnn-fp8"]
    assert ratio_to_best_peer(without_fp8_peer, "fa3-fp8")[(128, False, 1024)] == pytest.approx(1.8)
    table = format_table(records)
    header, row = table.splitlines()[1], table.splitlines()[3]
    assert header.split()[-2:] == ["fa3/best", "fp8/best"]
    assert row.split()[-2:] == ["1.200", "1.125"]


def test_cudnn_fp8_needs_the_frontend_and_a_gpu():
    from fa3.cudnn_fp8 import CudnnFp8Attention, cudnn_fp8_available
    if cudnn_fp8_available():
        pytest.skip("nvidia-cudnn-frontend and a GPU are present (tests/test_fp8.py runs it)")
    q = torch.zeros(1, 8, 1, 64, dtype=torch.bfloat16)
    with pytest.raises(RuntimeError, match=r"^cuDNN's FP8 attention needs nvidia-cudnn-frontend and a CUDA GPU: "):
        CudnnFp8Attention(q, q, q)


@pytest.mark.parametrize("version", ["1.16.0", "1.8.0", "0.9"])
def test_cudnn_fp8_names_a_frontend_too_old(version):
    from fa3.cudnn_fp8 import check_frontend_version
    with pytest.raises(RuntimeError, match=rf"needs nvidia-cudnn-frontend >= 1\.32, found {re.escape(version)}: "):
        check_frontend_version(version)


@pytest.mark.parametrize("version", ["1.32.0", "1.40.1", "2.0.0rc1"])
def test_cudnn_fp8_takes_a_recent_frontend(version):
    from fa3.cudnn_fp8 import check_frontend_version
    check_frontend_version(version)


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "b.png"
    plot([_rec("fa3", 600.0), _rec("sdpa-cudnn", 500.0), _rec("fa3", 300.0, causal=True)], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_from_json_round_trip(tmp_path, capsys):
    from dataclasses import asdict

    js = tmp_path / "r.json"
    js.write_text(json.dumps([asdict(_rec("fa3", 600.0)), asdict(_rec("sdpa-cudnn", 500.0))]))
    assert main(["--from-json", str(js)]) == 0
    assert "1.200" in capsys.readouterr().out


def test_compare_two_runs(tmp_path, capsys):
    from dataclasses import asdict

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps([asdict(_rec("fa3", 600.0)), asdict(_rec("sdpa-cudnn", 500.0))]))
    b.write_text(json.dumps([asdict(_rec("fa3", 630.0)), asdict(_rec("sdpa-cudnn", 450.0))]))
    assert main(["--compare", str(a), str(b)]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert row == ["128", "False", "1024", "600.0", "630.0", "1.200", "1.400", "1.167"]


@pytest.mark.parametrize("argv,message", [
    (["--hdim", "96"], "error: --hdim must be among 64, 128, 256, got 96"),
    (["--seqlen", "0"], "error: --seqlen values must be >= 1, got 0"),
    (["--rounds", "0"], "error: --rounds must be >= 1, got 0"),
])
def test_cli_rejects_bad_options(argv, message, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == message


def test_rounds_interleave_and_rotate():
    calls = []

    def timer(name, fail_on=None):
        def time_once():
            calls.append(name)
            if len([c for c in calls if c == name]) == fail_on:
                raise RuntimeError(f"{name} has no kernel")
            return float(len(calls))  # a "clock" that drifts with every call
        return time_once

    got = time_interleaved({"a": timer("a"), "b": timer("b"), "c": timer("c", fail_on=2)}, rounds=4)
    # rotated by the round, odd rounds reversed; c failed in round 1 and was dropped
    assert calls == ["a", "b", "c", "a", "c", "b", "a", "b", "b", "a"]
    assert got["a"] == [1.0, 4.0, 7.0, 10.0] and got["b"] == [2.0, 6.0, 8.0, 9.0]
    assert isinstance(got["c"], RuntimeError) and str(got["c"]) == "c has no kernel"
    # with three runners that all work, each one has two different predecessors over four rounds
    calls.clear()
    time_interleaved({n: timer(n) for n in "abc"}, rounds=4)
    pairs = {(calls[i - 1], calls[i]) for i in range(1, len(calls)) if i % 3}  # within a round
    for name in "abc":
        assert len({prev for prev, cur in pairs if cur == name}) == 2


@pytest.mark.gpu
def test_small_real_run(tmp_path, capsys):
    js = tmp_path / "b.json"
    assert main(["--hdim", "128", "--seqlen", "1024", "--causal", "true", "--impl", "fa3", "sdpa-cudnn",
                 "--json", str(js), "--no-progress"]) == 0
    data = json.loads(js.read_text())
    assert [d["impl"] for d in data] == ["fa3", "sdpa-cudnn"]
    fa3_row = data[0]
    assert fa3_row["tflops"] > 10 and fa3_row["gpu"] == torch.cuda.get_device_name()
    assert fa3_row["tflops"] == pytest.approx(attention_flops(16, 16, 1024, 1024, 128, True) / fa3_row["ms"] / 1e9)
    assert len(fa3_row["ms_rounds"]) == 3 and fa3_row["ms"] == sorted(fa3_row["ms_rounds"])[1]
    assert "fa3/best" in capsys.readouterr().out


@pytest.mark.parametrize("flags", [["--fp8", "--ablation"], ["--bwd", "--fp8"], ["--bwd", "--ablation"],
                                   ["--fwd-bwd", "--bwd"], ["--fwd-bwd", "--fp8"]])
def test_fp8_ablation_bwd_and_fwd_bwd_are_separate_runs(capsys, flags):
    from fa3.bench import main
    assert main(flags) == 2
    assert "error: --ablation, --fp8, --bwd and --fwd-bwd are separate runs; give one" in capsys.readouterr().err


def test_run_rejects_unknown_mode():
    from fa3.bench import run
    with pytest.raises(ValueError, match=r"^mode must be one of fwd, bwd, fwd\+bwd, got 'train'$"):
        run([], mode="train")


@pytest.mark.gpu
@pytest.mark.parametrize("flag, mode, title, hdim, causal", [("--bwd", "bwd", "backward", 128, False),
                                                             ("--fwd-bwd", "fwd+bwd", "forward + backward", 64, True)])
def test_backward_benches_count_their_flops(tmp_path, capsys, flag, mode, title, hdim, causal):
    """--bwd counts 2.5 forwards, --fwd-bwd 3.5."""
    from fa3.bench import main
    js = tmp_path / "bench.json"
    assert main([flag, "--hdim", str(hdim), "--seqlen", "1024", "--causal", str(causal).lower(), "--impl", "fa3",
                 "sdpa-cudnn", "--json", str(js), "--no-progress", "--rounds", "1"]) == 0
    rows = json.loads(js.read_text())
    assert [r["mode"] for r in rows] == [mode, mode] and rows[0]["error"] is None
    flops = attention_flops(16, 2048 // hdim, 1024, 1024, hdim, causal, mode)
    assert rows[0]["tflops"] == pytest.approx(flops / rows[0]["ms"] / 1e9)
    assert f"TFLOP/s, {title}," in capsys.readouterr().out

"""benchmarks/tbc_speed.py on a tiny shape: its tables, and that our layer is one of the forms it times."""
import pytest
import torch

from benchmarks import tbc_speed


def test_speed_benchmark_tables_on_a_tiny_shape(tmp_path):
    markdown, plot = tmp_path / "speed.md", tmp_path / "speed.png"
    result = tbc_speed.main(["--channels", "32", "--size", "8", "--batch", "2", "--blocks", "1", "2",
                             "--implementation-blocks", "2", "16", "--repeats", "1",
                             "--markdown", str(markdown), "--plot", str(plot)])
    assert [row[0] for row in result["fixed_flops"]] == [1, 2] and [row[0] for row in result["dense"]] == [2]
    # 16 channels a block: the crossover, tiled only with gradients; 2: tiled
    assert [(row[1], row[5]) for row in result["forms_backward"]] == [(16, "tiled"), (2, "tiled")]
    assert [(row[1], row[5]) for row in result["forms_forward"]] == [(16, "reshape"), (2, "tiled")]
    assert all(row[-1] > 0 for row in result["forms_backward"] + result["forms_forward"])
    text = " ".join(markdown.read_text().split())
    assert "process CPU time, interleaved" in text and "| best other / ours |" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("B", [1, 2, 4])
def test_timed_stand_ins_compute_tbc(B):
    """The authors' reshape layer and the tiled-weight layer the benchmark times are TBC too."""
    torch.manual_seed(0)
    ours = tbc_speed.TiedBlockConv2d(8, 8, 3, padding=1, bias=False, B=B)
    authors, tiled = tbc_speed.AuthorsStyleTBC(8, 8, 3, 1, B), tbc_speed.TiledWeightTBC(8, 8, 3, 1, B)
    with torch.no_grad():
        authors.conv.weight.copy_(ours.weight)
        tiled.weight.copy_(ours.weight)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(authors(x), ours(x))
    torch.testing.assert_close(tiled(x), ours(x))

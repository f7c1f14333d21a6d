"""sfbench.accel on the CPU: deterministic switches, optional compile, batch delivery."""

import pytest
import torch

from sfbench.accel import CUBLAS_WORKSPACE, deterministic_settings, maybe_compile, pinned_batches
from sfbench.models import MLP


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic)
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1:]


def test_deterministic_settings_switch_on_and_off(restore_determinism):
    on = deterministic_settings(True)
    assert on == {"deterministic_algorithms": True, "cudnn_benchmark": False,
                  "cudnn_deterministic": True, "cublas_workspace_config": CUBLAS_WORKSPACE}
    assert torch.are_deterministic_algorithms_enabled()
    off = deterministic_settings(False)
    assert not off["deterministic_algorithms"] and off["cudnn_benchmark"]
    assert not torch.backends.cudnn.deterministic


def test_deterministic_settings_keep_a_users_cublas_workspace(restore_determinism, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    assert deterministic_settings(True)["cublas_workspace_config"] == ":16:8"


def test_deterministic_mode_rejects_a_nondeterministic_kernel(restore_determinism):
    # put_ without accumulate has no deterministic implementation, on the CPU too:
    # it raises exactly when the switch is really in force.
    def put():
        torch.zeros(3).put_(torch.tensor([0, 0]), torch.ones(2))

    deterministic_settings(True)
    with pytest.raises(RuntimeError, match="deterministic"):
        put()
    deterministic_settings(False)
    put()


def test_maybe_compile_off_returns_the_module_itself():
    net = MLP(dim=2, width=8, depth=1)
    assert maybe_compile(net, False) is net


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_compiled_module_matches_and_shares_parameters(backend):
    torch.manual_seed(0)
    net = MLP(dim=2, width=16, depth=2)
    compiled = maybe_compile(net, True, backend=backend)
    x, t = torch.randn(5, 2), torch.rand(5)
    torch.testing.assert_close(compiled(x, t), net(x, t))
    with torch.no_grad():  # a change to the original's weights is seen by the compiled one
        next(net.parameters()).add_(1.0)
    torch.testing.assert_close(compiled(x, t), net(x, t))


def test_pinned_batches_on_cpu_draw_rows_from_the_generator():
    data = torch.arange(40.0).reshape(20, 2)
    batches = list(pinned_batches(data, 4, "cpu", torch.Generator().manual_seed(3), steps=3))
    assert len(batches) == 3 and all(b.shape == (4, 2) for b in batches)
    for b in batches:  # every row is a row of the data
        assert all((data == row).all(1).any() for row in b)
    again = list(pinned_batches(data, 4, "cpu", torch.Generator().manual_seed(3), steps=3))
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0, "steps": 1}, "batch_size"),
    ({"batch_size": 2, "steps": -1}, "steps"),
])
def test_pinned_batches_reject_bad_sizes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        list(pinned_batches(torch.zeros(5, 2), device="cpu", generator=torch.Generator(),
                            **kwargs))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pinned_batches_arrive_on_cuda():
    data = torch.randn(100, 2)
    (batch,) = pinned_batches(data, 8, "cuda", torch.Generator().manual_seed(0), steps=1)
    assert batch.device.type == "cuda"

import pytest
import torch

from giasok.fl import apply_update, client_update, fedavg_round, minibatch_schedule
from giasok.models import build_model


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_fedsgd_update_is_minus_lr_times_the_gradient():
    model = build_model("convnet", 10, seed=0, width=4)
    x, y = _data(3)
    update = client_update(model, x, y, lr=0.05)
    assert update.local_updates == 1 and update.batch_size == 3 and update.num_samples == 3
    model.train()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    for name, p in model.named_parameters():
        assert torch.allclose(update.delta[name], -0.05 * p.grad, atol=1e-7)
        assert torch.allclose(update.as_gradient()[name], p.grad, atol=1e-5)


def test_model_is_untouched_and_local_updates_counted():
    model = build_model("convnet", 10, seed=0, width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _data(8)
    update = client_update(model, x, y, lr=0.1, epochs=2, batch_size=3)
    assert update.local_updates == 2 * 3  # ⌈8/3⌉ = 3 steps per epoch
    assert sorted(torch.cat(update.batches[:3]).tolist()) == list(range(8))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_update_is_deterministic_under_seed_even_with_dropout():
    model = build_model("convnet", 10, seed=0, width=4, dropout=0.5)
    x, y = _data(4)
    a = client_update(model, x, y, lr=0.1, batch_size=2, seed=7)
    b = client_update(model, x, y, lr=0.1, batch_size=2, seed=7)
    assert all(torch.equal(a.delta[k], b.delta[k]) for k in a.delta)


def test_impossible_sizes_are_rejected():
    model = build_model("lenet", 10, seed=0)
    x, y = _data(4)
    with pytest.raises(ValueError, match="1 ≤ B ≤ N"):
        client_update(model, x, y, lr=0.1, batch_size=5)
    with pytest.raises(ValueError, match="E ≥ 1"):
        client_update(model, x, y, lr=0.1, epochs=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        client_update(model, x, y, lr=0)
    with pytest.raises(ValueError, match="N labels"):
        client_update(model, x, y[:3], lr=0.1)
    with pytest.raises(ValueError):
        minibatch_schedule(0, None, 1, shuffle=False)


def test_fedavg_round_is_the_sample_weighted_mean_of_client_models():
    model = build_model("convnet", 10, seed=0, width=4, batch_norm=True)
    clients = [_data(2, seed=1), _data(6, seed=2)]
    new, updates = fedavg_round(model, clients, lr=0.1, batch_size=2, seed=3)
    for name, p in new.named_parameters():
        expected = dict(model.named_parameters())[name] + 0.25 * updates[0].delta[name] + 0.75 * updates[1].delta[name]
        assert torch.allclose(p, expected, atol=1e-6)
    one = apply_update(model, updates[1].delta, updates[1].buffers)
    assert torch.equal(dict(one.named_buffers())["features.2.running_mean"], updates[1].buffers["features.2.running_mean"])


class _Interrupted(Exception):
    """Stands in for a Ctrl-C or a killed job in the middle of a run."""


def _counting(monkeypatch, fail_after=None):
    """Count FedAvg rounds run (and optionally interrupt the run after ``fail_after`` of them)."""
    from giasok import fl

    calls = []

    def counted(*args, **kwargs):
        if fail_after is not None and len(calls) == fail_after:
            raise _Interrupted("simulated interruption")
        calls.append(kwargs["seed"])
        return fedavg_round(*args, **kwargs)  # the original, imported at the top

    monkeypatch.setattr(fl, "fedavg_round", counted)
    return calls


def test_an_interrupted_fedavg_run_resumes_at_the_last_finished_round(tmp_path, monkeypatch):
    from giasok.runs import FedAvgTraining

    training = FedAvgTraining(model="convnet", model_options=(("width", 4),), clients=2, samples_per_client=8,
                              batch_size=4, lr=0.05)
    reference = training.global_model(4, root=tmp_path / "uninterrupted", progress=False)
    root = tmp_path / "interrupted"
    _counting(monkeypatch, fail_after=2)
    with pytest.raises(_Interrupted):
        training.global_model(4, root=root, progress=False)
    assert training.last_checkpoint(4, root=root) == 2
    calls = _counting(monkeypatch)
    resumed = training.global_model(4, root=root, progress=False)
    assert len(calls) == 2  # rounds 3 and 4 only
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name  # resuming changes nothing
    assert not torch.equal(reference.state_dict()["classifier.weight"],
                           training.initial_model().state_dict()["classifier.weight"])
    training.global_model(3, root=root, progress=False)
    assert len(calls) == 2  # an earlier round is read from disk


def test_fedavg_training_refuses_impossible_splits():
    from giasok.runs import FedAvgTraining

    with pytest.raises(ValueError, match="batch_size"):
        FedAvgTraining(samples_per_client=8, batch_size=16)
    with pytest.raises(ValueError, match="exceeds"):
        FedAvgTraining(clients=20, samples_per_client=400).client_data()


def _old_fedavg_round(global_model, clients, *, lr, batch_size, seed):
    """fedavg_round as it was before participation and defences: every client, seeds seed + k, N-weighted."""
    updates = [client_update(global_model, x, y, lr=lr, batch_size=batch_size, seed=seed + k)
               for k, (x, y) in enumerate(clients)]
    total = sum(u.num_samples for u in updates)
    delta = {name: sum(u.delta[name] * (u.num_samples / total) for u in updates) for name in updates[0].delta}
    buffers = {name: sum(u.buffers[name] * (u.num_samples / total) for u in updates) if first.is_floating_point()
               else first for name, first in updates[0].buffers.items()}
    return apply_update(global_model, delta, buffers)


def test_fedavg_defaults_reproduce_the_old_rounds_bit_for_bit():
    from giasok.fl import fedavg_rounds

    model = build_model("convnet", 10, seed=0, width=4, batch_norm=True, dropout=0.5)
    clients = [_data(4, seed=1), _data(6, seed=2), _data(2, seed=3)]
    old = model
    for t in (1, 2):
        old = _old_fedavg_round(old, clients, lr=0.1, batch_size=2, seed=5 * 1_000_003 + t * len(clients))
    for new in (dict(fedavg_rounds(model, clients, rounds=2, lr=0.1, batch_size=2, seed=5))[2],
                dict(fedavg_rounds(model, clients, rounds=2, lr=0.1, batch_size=2, seed=5, defense=None,
                                   participation=1.0))[2]):
        for (name, a), b in zip(old.state_dict().items(), new.state_dict().values()):
            assert torch.equal(a, b), name


def test_sample_clients_draws_the_share_deterministically():
    from giasok.fl import sample_clients

    chosen = sample_clients(100, 0.1, seed=7)
    assert len(chosen) == 10 == len(set(chosen)) and list(chosen) == sorted(chosen) and max(chosen) < 100
    assert sample_clients(100, 0.1, seed=7) == chosen and sample_clients(100, 0.1, seed=8) != chosen
    assert sample_clients(5, 0.01, seed=0) != () and len(sample_clients(5, 0.01, seed=0)) == 1  # at least one
    assert sample_clients(4, 1.0, seed=3) == (0, 1, 2, 3)
    for bad in (0, 1.5, -0.1, True, "half"):
        with pytest.raises(ValueError, match=r"participation must be a fraction in \(0, 1\]"):
            sample_clients(4, bad, seed=0)


def test_partial_participation_averages_the_sampled_clients_by_their_n():
    from giasok.fl import sample_clients

    model = build_model("convnet", 10, seed=0, width=4)
    clients = [_data(2 * (k + 1), seed=k) for k in range(4)]  # N = 2, 4, 6, 8
    new, updates = fedavg_round(model, clients, lr=0.1, batch_size=2, seed=21, participation=0.5)
    chosen = sample_clients(4, 0.5, seed=21)
    assert [u.num_samples for u in updates] == [2 * (k + 1) for k in chosen]
    total = sum(u.num_samples for u in updates)
    for name, p in new.named_parameters():
        expected = dict(model.named_parameters())[name] + sum(u.delta[name] * u.num_samples / total for u in updates)
        assert torch.allclose(p, expected, atol=1e-6)
    # client k trains with seed + k whether or not the others take part: its update equals a solo round's
    k = chosen[0]
    alone = client_update(model, *clients[k], lr=0.1, batch_size=2, seed=21 + k)
    assert all(torch.equal(alone.delta[n], updates[0].delta[n]) for n in alone.delta)

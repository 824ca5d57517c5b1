"""The arena layout: offsets by liveness, near the bound, checked; on every example net."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

import symbol as sym
from examples import lstm, mlp, resnet
from optim.arena import (ALIGN, GREEDY_MAX, Arena, ArenaError, _best_fit, _greedy_by_size,
                         align, check_arena, layout_arena, live_peak, side_by_side)
from optim.memory import check_memory_plan
from optim.mirror import MIRROR_STRATEGIES


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_blocks_with_disjoint_lives_share_bytes_and_overlapping_ones_do_not():
    # a (0..1) and c (2..3) never live together; b (1..2) overlaps both
    arena = layout_arena([1000, 1000, 1000], [0, 1, 2], [1, 2, 3])
    check_arena(arena, [1000, 1000, 1000], [0, 1, 2], [1, 2, 3])
    a, b, c = arena.offsets
    assert a == c != b and arena.size == arena.live_peak == 2 * align(1000)


def test_offsets_and_sizes_are_aligned():
    arena = layout_arena([1, 300, 5], [0, 0, 0], [0, 0, 0])
    assert all(o % ALIGN == 0 for o in arena.offsets)
    assert arena.size == 3 * ALIGN + ALIGN  # 300 bytes take two units
    assert align(0) == 0 and align(1) == ALIGN and align(ALIGN) == ALIGN


def test_a_freed_gap_is_reused_by_the_best_fitting_block():
    # big (0..0) and small (0..1) are placed at step 0; big's gap is reused at step 1 by the
    # block that fits it, while the small one stays put
    sizes, starts, ends = [4 * ALIGN, ALIGN, 4 * ALIGN], [0, 0, 1], [0, 1, 1]
    offsets, peak = _best_fit(sizes, starts, ends)
    assert offsets[2] == offsets[0] and peak == 5 * ALIGN


def test_colours_get_regions_of_their_own():
    sizes, starts, ends = [ALIGN] * 4, [0, 1, 2, 3], [0, 1, 2, 3]
    one = layout_arena(sizes, starts, ends, [0, 0, 0, 0])
    two = layout_arena(sizes, starts, ends, [0, 1, 0, 1])
    assert one.size == ALIGN and two.size == 2 * ALIGN
    check_arena(two, sizes, starts, ends, [0, 1, 0, 1])
    assert {two.offsets[0], two.offsets[2]}.isdisjoint({two.offsets[1], two.offsets[3]})


def test_checker_rejects_overlaps_and_blocks_outside():
    sizes, starts, ends = [ALIGN, ALIGN], [0, 1], [2, 3]
    with pytest.raises(ArenaError, match="share bytes while both live"):
        check_arena(Arena((0, 0), ALIGN, 2 * ALIGN), sizes, starts, ends)
    with pytest.raises(ArenaError, match="outside the arena"):
        check_arena(Arena((0, ALIGN), ALIGN, 2 * ALIGN), sizes, starts, ends)
    with pytest.raises(ArenaError, match="colours 0 and 1 intersect"):
        check_arena(Arena((0, 0), ALIGN, ALIGN), sizes, [0, 3], [1, 4], [0, 1])
    check_arena(Arena((0, 0), ALIGN, ALIGN), sizes, [0, 3], [1, 4])  # apart in time: fine


def test_side_by_side_never_shares():
    arena = side_by_side([100, 5000, 1])
    assert arena.offsets == (0, ALIGN, ALIGN + align(5000)) and arena.size == arena.live_peak


def _random_blocks(seed: int, n: int):
    rnd = random.Random(seed)
    starts = [rnd.randrange(60) for _ in range(n)]
    ends = [s + rnd.choice([0, 1, 2, 5, 30]) for s in starts]
    sizes = [rnd.choice([1, 3, 8, 64]) * 1000 for _ in range(n)]
    return sizes, starts, ends


@pytest.mark.parametrize("seed", range(20))
def test_random_layouts_are_legal_and_never_below_the_bound(seed):
    sizes, starts, ends = _random_blocks(seed, 200)
    colours = [i % 2 for i in range(200)] if seed % 3 == 0 else None
    arena = layout_arena(sizes, starts, ends, colours)
    check_arena(arena, sizes, starts, ends, colours)
    assert arena.size >= arena.live_peak == live_peak([align(s) for s in sizes], starts, ends)
    offsets, size = _greedy_by_size([align(s) for s in sizes], starts, ends, window=4)
    check_arena(Arena(tuple(offsets), size, arena.live_peak), [align(s) for s in sizes],
                starts, ends)


def _best_fit_by_steps(sizes, starts, ends):
    """Best fit walking every step (the plain form of ``_best_fit``'s event walk)."""
    from optim.arena import _Gaps
    gaps = _Gaps(sum(sizes).bit_length())
    offsets = [0] * len(sizes)
    for step in range(max([*starts, *ends], default=-1) + 1):
        born = sorted((b for b in range(len(sizes)) if starts[b] == step), key=lambda b: -sizes[b])
        for b in born:
            offsets[b] = gaps.take(sizes[b])
        for b in range(len(sizes)):
            if ends[b] == step:
                gaps.give(offsets[b], sizes[b])
    return offsets, gaps.peak


@pytest.mark.parametrize("seed", range(10))
def test_best_fit_event_walk_equals_the_step_by_step_walk(seed):
    sizes, starts, ends = _random_blocks(seed, 150)
    sizes = [align(s) for s in sizes]
    assert _best_fit(sizes, starts, ends) == _best_fit_by_steps(sizes, starts, ends)


def test_greedy_is_used_only_below_its_size_limit():
    assert GREEDY_MAX >= 20_000  # the ResNet-1001 recursive plan (22,733 storages) still fits


def _dsl(name, **params):
    return sym.load(str(EXAMPLES / name), params=params)


#: Every example net at a small size: (symbol, input shapes).
NETS = {
    "mlp": lambda: (mlp.get_symbol(), {"data": (8, 100)}),
    "resnet": lambda: (resnet.get_symbol(num_classes=10, units=(2, 2, 2),
                                         filter_list=(16, 64, 128, 256),
                                         image_shape=(3, 32, 32)), {"data": (4, 3, 32, 32)}),
    "resnet-imagenet": lambda: (resnet.get_symbol(units=(2, 2, 2, 2)),
                                {"data": (2, 3, 64, 64)}),
    "lstm": lambda: (lstm.get_symbol(seq_len=12, num_layers=2, num_hidden=32, input_size=8,
                                     num_label=20),
                     {**{f"t{t}_data": (4, 8) for t in range(12)},
                      **{f"l{i}_init_{k}": (4, 32) for i in range(2) for k in "ch"}}),
    "inception.sym": lambda: (_dsl("inception.sym", blocks=((4, 4, 4, 4, 4, 4),) * 2,
                                   image_size=16, batch=2, num_classes=5), {}),
    "densenet.sym": lambda: (_dsl("densenet.sym", blocks=(3, 3), growth=4, stem=8, bn_size=2,
                                  image=(3, 16, 16), batch=2, num_classes=5), {}),
    "gru.sym": lambda: (_dsl("gru.sym", steps=8, layers=2, hidden=16, input_size=4,
                             num_label=10, batch=4), {}),
}


@pytest.mark.parametrize("mirror", [m for m in MIRROR_STRATEGIES])
@pytest.mark.parametrize("name", sorted(NETS))
def test_example_nets_plan_within_five_percent_of_the_live_peak(name, mirror):
    net, shapes = NETS[name]()
    from optim.pipeline import default_grad_req
    from optim.search import plan_training as plan_with_mirror
    declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
    reqs = default_grad_req(net.list_arguments(), [*shapes, *declared])
    _, nplan = plan_with_mirror(net.graph, shapes, grad_req=reqs,
                                aux=net.list_auxiliary_states(), strategy="sharing",
                                mirror=mirror)
    plan = nplan.plan
    check_memory_plan(plan)
    assert plan.live_peak_bytes <= plan.planned_bytes <= 1.05 * plan.live_peak_bytes
    if mirror != "sublinear":  # (the search may pick another candidate for another layout)
        _, pool = plan_with_mirror(net.graph, shapes, grad_req=reqs,
                                   aux=net.list_auxiliary_states(), strategy="pool",
                                   mirror=mirror)
        # the same values, so the same bound; MXNet's pool lays them out no better
        assert pool.plan.live_peak_bytes == plan.live_peak_bytes <= pool.plan.planned_bytes

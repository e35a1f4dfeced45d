"""The literal SASS shape tables (samic_fast.shapes) are what the default model really calls."""

import dataclasses

from samic_fast.config import get_config
from samic_fast.shapes import (DEFAULT_C_SEM, DEFAULT_CLUSTERS, SASS_SHAPES_768x512, SASS_SHAPES_3840x2160,
                               TABLE_SIZES, trace_sass_shapes)


def test_tables_equal_the_trace():
    assert trace_sass_shapes(None, *TABLE_SIZES["768x512"]) == SASS_SHAPES_768x512
    assert trace_sass_shapes(None, *TABLE_SIZES["3840x2160"]) == SASS_SHAPES_3840x2160
    cfg = get_config("samic")
    assert (cfg.sass.c_sem, cfg.sass.num_clusters) == (DEFAULT_C_SEM, DEFAULT_CLUSTERS)


def test_trace_follows_the_config():
    shapes = trace_sass_shapes(get_config("tiny"), 128, 64)
    assert all(s.L == s.height * s.width for s in shapes)
    assert max(s.L for s in shapes) == 64 * 32  # the first stage of g_a works at H/2 x W/2
    deeper = trace_sass_shapes(dataclasses.replace(get_config("tiny"), depths=(2, 1, 1)), 128, 64)
    assert sum(s.count for s in deeper) == sum(s.count for s in shapes) + 2  # one more in g_a and g_s

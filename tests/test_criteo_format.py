import numpy as np
import pytest

from recsearch.data.criteo import HEX_LUT, dense_transform, format_days, hex_encode, parse_days


def test_parse_days_ranges_and_errors() -> None:
    assert parse_days("0-3,7,2") == [0, 1, 2, 3, 7]
    assert format_days([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10"
    for bad in ["", "3-1", "a", "-2", "1-2-3"]:
        with pytest.raises(ValueError, match="day list"):
            parse_days(bad)


def test_hex_roundtrip() -> None:
    v = np.array([0, 1, 0xDEADBEEF, 0xFFFFFFFF], dtype=np.int64)
    digits = HEX_LUT[hex_encode(v)].astype(np.int64)
    back = (digits << (np.arange(7, -1, -1) * 4)).sum(axis=1)
    assert (back == v).all()
    assert hex_encode(np.array([0xAB])).tobytes() == b"000000ab"


def test_dense_transform_clamps_and_logs() -> None:
    out = dense_transform(np.array([-5, 0, 1, 1000]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0, 0, np.log(2), np.log(1001)], rtol=1e-6)

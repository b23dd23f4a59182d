import pytest

from ca.certs import build_name
from trust.errors import ProfileSubjectInvalid


def test_chinese_subject_round_trips():
    assert build_name({"common_name": "国密根CA"}).native["common_name"] == "国密根CA"


def test_unassigned_code_point_refused():
    # Found by the schema fuzzer: such a CA became a trust anchor that broke every
    # later path validation (RFC 4518 preparation refuses it).
    with pytest.raises(ProfileSubjectInvalid):
        build_name({"common_name": "a\U000e0080b"})

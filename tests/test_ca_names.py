import pytest

from ca.certs import AltName, build_name, parse_alt_name
from trust.errors import ProfileSanInvalid, ProfileSubjectInvalid, SubjectAttributeTooLong


def test_chinese_subject_round_trips() -> None:
    assert build_name({"common_name": "国密根CA"}).native["common_name"] == "国密根CA"


def test_unassigned_code_point_refused() -> None:
    # Found by the schema fuzzer: such a CA became a trust anchor that broke every
    # later path validation (RFC 4518 preparation refuses it).
    with pytest.raises(ProfileSubjectInvalid):
        build_name({"common_name": "a\U000e0080b"})


def test_rfc5280_upper_bounds() -> None:
    # ub-common-name is 64 characters (not bytes): 64 Chinese characters pass, 65 do not.
    assert build_name({"common_name": "国" * 64}).native["common_name"] == "国" * 64
    with pytest.raises(SubjectAttributeTooLong) as e:
        build_name({"common_name": "a" * 500})
    assert e.value.code == "subject_attribute_too_long" and e.value.status == 422
    with pytest.raises(SubjectAttributeTooLong):
        build_name({"organization_name": "o" * 65})
    assert build_name({"locality_name": "l" * 128}).native["locality_name"] == "l" * 128
    with pytest.raises(SubjectAttributeTooLong):
        build_name({"locality_name": "l" * 129})


@pytest.mark.parametrize("bare", ["a.example", "li@example.cn", "10.0.0.1", "uri:http://x"])
def test_alternative_names_need_their_kind(bare: str) -> None:
    with pytest.raises(ProfileSanInvalid, match="dns:, ip: or email:"):
        parse_alt_name(bare)


def test_alternative_names_with_kind() -> None:
    assert parse_alt_name("DNS:WWW.Example.cn") == AltName("dns", "www.example.cn")
    assert parse_alt_name("ip:::1") == AltName("ip", "::1")
    assert parse_alt_name("email:li@example.cn") == AltName("email", "li@example.cn")
    with pytest.raises(ProfileSanInvalid):
        parse_alt_name("email:" + "a" * 251 + "@b.cn")

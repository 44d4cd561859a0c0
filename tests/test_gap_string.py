import pytest

from kernelpot.potential.gap_string import parse_gap_string, parse_value

GAP_FIT_EXAMPLE = (
    "{distance_2b cutoff=5.0 n_sparse=20 covariance_type=ard_se delta=2.0 theta_uniform=1.0 "
    "sparse_method=uniform : soap l_max=6 n_max=8 atom_sigma=0.5 cutoff=5.0 cutoff_transition_width=1.0 "
    "delta=0.2 covariance_type=dot_product zeta=4 n_sparse=1000 sparse_method=cur_points}"
)


def test_parses_the_gap_fit_example():
    terms = parse_gap_string(GAP_FIT_EXAMPLE)
    assert [name for name, _ in terms] == ["distance_2b", "soap"]
    two_body, soap = (params for _, params in terms)
    assert two_body == {
        "cutoff": 5.0, "n_sparse": 20, "covariance_type": "ard_se", "delta": 2.0,
        "theta_uniform": 1.0, "sparse_method": "uniform",
    }
    assert soap["l_max"] == 6 and isinstance(soap["l_max"], int)
    assert soap["atom_sigma"] == 0.5 and soap["sparse_method"] == "cur_points"


def test_braced_lists_quotes_booleans_and_case():
    ((name, params),) = parse_gap_string('SOAP Z={1 8} add_species=F note="two words" N_MAX=4')
    assert name == "soap"
    assert params == {"z": [1, 8], "add_species": False, "note": "two words", "n_max": 4}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("{soap : }", "term 1 .* is empty"),
        ("{cutoff=5 soap}", "must start with a descriptor name"),
        ("{soap =4}", "expected key=value"),
        ("{soap l_max=2 l_max=3}", "given twice"),
        ("{soap z={1 8}", "unbalanced"),
        ('{soap note="open}', "unbalanced"),
    ],
)
def test_bad_strings_are_rejected(text, message):
    with pytest.raises(ValueError, match=message):
        parse_gap_string(text)


def test_parse_value_types():
    assert parse_value("1e-3") == pytest.approx(1e-3)
    assert parse_value("T") is True
    assert parse_value("cur_points") == "cur_points"

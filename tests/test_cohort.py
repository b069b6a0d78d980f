"""Cohort loading: bad input gets an error that names the problem; good input is read, mapped and
derived as DESIGN.md's cohort contract says.

Expected values here are derived by hand from the tiny tables written in each test (shown in the
docstrings), never from bagkit's own output. Exact comparisons (==) are used where the arithmetic
is exact in binary floating point; elsewhere pytest.approx with its default 1e-6 relative tolerance.
"""
from __future__ import annotations

import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bagkit.cohort import derive_worsening, read_cohort, read_visits, worsening_threshold
from bagkit.errors import BagkitError, CohortError

BASIC = """subject_id,group,age,sex
s1,NMOSD,40,F
s2,NMOSD,50,M
s3,HC,30,F
s4,HC,35,M
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@contextmanager
def raises_naming(*pieces: str):
    """pytest.raises(CohortError) whose message must contain every piece."""
    with pytest.raises(CohortError) as info:
        yield info
    message = str(info.value)
    for piece in pieces:
        assert piece in message, f"{piece!r} not in the error message: {message}"


# --- bad input -----------------------------------------------------------------------------------

def test_missing_required_column_is_named(tmp_path):
    path = write(tmp_path, "c.csv", "subject_id,group,sex\ns1,HC,F\ns2,HC,M\n")
    with raises_naming("'age'", "required", str(path), "subject_id, group, sex"):
        read_cohort(path)


def test_unknown_control_label_lists_the_groups(tmp_path):
    path = write(tmp_path, "c.csv", BASIC)
    with raises_naming("'Controls'", "NMOSD, HC", "--control"):
        read_cohort(path, control="Controls")


def test_non_numeric_age_names_column_value_and_line(tmp_path):
    path = write(tmp_path, "c.csv", BASIC.replace("s2,NMOSD,50,M", "s2,NMOSD,fifty,M"))
    with raises_naming("column 'age'", "numeric", "'fifty'", "line(s) 3"):
        read_cohort(path)


def test_non_numeric_mapped_column_is_named_as_the_user_named_it(tmp_path):
    path = write(tmp_path, "c.csv", "id,dx,AgeYears\ns1,HC,40\ns2,HC,x\n")
    with raises_naming("column 'AgeYears'", "'x'", "line(s) 3"):
        read_cohort(path, columns={"subject_id": "id", "group": "dx", "age": "AgeYears"})


def test_age_out_of_range_is_named(tmp_path):
    path = write(tmp_path, "c.csv", BASIC.replace("s4,HC,35,M", "s4,HC,350,M"))
    with raises_naming("column 'age'", "350", "line(s) 5"):
        read_cohort(path)


def test_duplicated_subject_id_names_the_id_and_lines(tmp_path):
    path = write(tmp_path, "c.csv", BASIC.replace("s3,HC", "s1,HC"))
    with raises_naming("subject_id", "unique", "'s1'", "2, 4"):
        read_cohort(path)


def test_group_asked_for_without_subjects(tmp_path):
    path = write(tmp_path, "c.csv", BASIC)
    with raises_naming("'RRMS'", "no subjects", "NMOSD, HC"):
        read_cohort(path, groups=["NMOSD", "RRMS", "HC"])


def test_group_with_one_subject(tmp_path):
    path = write(tmp_path, "c.csv", BASIC + "s5,RRMS,44,F\n")
    with raises_naming("group 'RRMS'", "1 subject", "at least 2"):
        read_cohort(path)


@pytest.mark.parametrize("missing", ["", "NA", "n/a", "NaN"])
def test_nan_age_names_column_and_line(tmp_path, missing):
    path = write(tmp_path, "c.csv", BASIC.replace("s3,HC,30,F", f"s3,HC,{missing},F"))
    with raises_naming("column 'age'", "empty", "line(s) 4"):
        read_cohort(path)


def test_empty_group_label_names_line(tmp_path):
    path = write(tmp_path, "c.csv", BASIC.replace("s2,NMOSD,50", "s2,,50"))
    with raises_naming("column 'group'", "empty", "line(s) 3"):
        read_cohort(path)


def test_bad_sex_code_names_value_and_line(tmp_path):
    path = write(tmp_path, "c.csv", BASIC.replace("s4,HC,35,M", "s4,HC,35,X"))
    with raises_naming("column 'sex'", "F or M", "'X'", "line(s) 5"):
        read_cohort(path)


def test_bad_binary_code_is_named(tmp_path):
    path = write(tmp_path, "c.csv", "subject_id,group,age,dmt\ns1,HC,40,0\ns2,HC,41,maybe\n")
    with raises_naming("column 'dmt'", "0 or 1", "'maybe'", "line(s) 3"):
        read_cohort(path)


def test_visits_row_for_unknown_subject(tmp_path):
    cohort = write(tmp_path, "c.csv", "subject_id,group,age,edss\ns1,HC,40,1\ns2,HC,41,2\n")
    visits = write(tmp_path, "v.csv", "subject_id,years,edss\ns1,1,1\nghost,2,3\n")
    with raises_naming("'ghost'", "not in the cohort", str(visits), "line(s) 3"):
        read_cohort(cohort, visits=visits)


def test_visits_file_missing_column(tmp_path):
    visits = write(tmp_path, "v.csv", "subject_id,years\ns1,1\n")
    with raises_naming(str(visits), "edss", "not found"):
        read_visits(visits)


def test_visits_non_numeric_years(tmp_path):
    visits = write(tmp_path, "v.csv", "subject_id,years,edss\ns1,1,1\ns1,later,2\n")
    with raises_naming(str(visits), "'years'", "'later'", "line(s) 3"):
        read_visits(visits)


def test_mapping_to_a_column_the_file_lacks(tmp_path):
    path = write(tmp_path, "c.csv", BASIC)
    with raises_naming("'age'", "'AGE_YEARS'", "no column", "subject_id, group, age, sex"):
        read_cohort(path, columns={"age": "AGE_YEARS"})


def test_mapping_to_an_unknown_canonical_name(tmp_path):
    path = write(tmp_path, "c.csv", BASIC)
    with raises_naming("'agee'", "not a bagkit column"):
        read_cohort(path, columns={"agee": "age"})


def test_mapping_file_that_does_not_exist(tmp_path):
    path = write(tmp_path, "c.csv", BASIC)
    with raises_naming("nowhere.json", "does not exist"):
        read_cohort(path, mapping_file=tmp_path / "nowhere.json")


def test_mapping_file_with_bad_json(tmp_path):
    path = write(tmp_path, "c.csv", BASIC)
    mapping = write(tmp_path, "m.json", "{columns: oops")
    with raises_naming(str(mapping), "not valid JSON"):
        read_cohort(path, mapping_file=mapping)


def test_cohort_file_that_does_not_exist(tmp_path):
    with raises_naming("missing.csv", "does not exist"):
        read_cohort(tmp_path / "missing.csv")


def test_cohort_file_without_rows(tmp_path):
    path = write(tmp_path, "c.csv", "subject_id,group,age\n")
    with raises_naming(str(path), "no rows"):
        read_cohort(path)


def test_errors_belong_to_one_family(tmp_path):
    with pytest.raises(BagkitError):
        read_cohort(tmp_path / "missing.csv")
    assert issubclass(CohortError, ValueError)


def test_visits_and_worsening_columns_together_is_an_error(tmp_path):
    cohort = write(tmp_path, "c.csv", "subject_id,group,age,edss,worsening,followup_years\n"
                                      "s1,HC,40,1,0,2\ns2,HC,41,2,1,3\n")
    visits = write(tmp_path, "v.csv", "subject_id,years,edss\ns1,1,1\n")
    with raises_naming("worsening, followup_years", "visits table", "one way only"):
        read_cohort(cohort, visits=visits)


def test_year_zero_visit_disagreeing_with_baseline(tmp_path):
    cohort = write(tmp_path, "c.csv", "subject_id,group,age,edss\ns1,HC,40,2.0\ns2,HC,41,2.0\n")
    visits = write(tmp_path, "v.csv", "subject_id,years,edss\ns2,0,3.5\ns2,1,4\n")
    with raises_naming("'s2'", "year-0", "3.5", "(2)", str(visits)):
        read_cohort(cohort, visits=visits)


def test_follow_up_visits_without_any_baseline_edss(tmp_path):
    cohort = write(tmp_path, "c.csv", "subject_id,group,age\ns1,HC,40\ns2,HC,41\n")
    visits = write(tmp_path, "v.csv", "subject_id,years,edss\ns2,1,4\n")
    with raises_naming("'s2'", "no baseline EDSS"):
        read_cohort(cohort, visits=visits)


def test_worsening_without_followup_years(tmp_path):
    path = write(tmp_path, "c.csv", "subject_id,group,age,worsening\ns1,HC,40,0\ns2,HC,41,1\n")
    with raises_naming("'worsening'", "'followup_years'"):
        read_cohort(path)


def test_worsening_and_followup_years_must_come_together(tmp_path):
    path = write(tmp_path, "c.csv", "subject_id,group,age,worsening,followup_years\n"
                                    "s1,HC,40,0,2\ns2,HC,41,,3\n")
    with raises_naming("both given or both empty", "line(s) 3"):
        read_cohort(path)


# --- reading and mapping -------------------------------------------------------------------------

def test_bids_participants_tsv(tmp_path):
    """BIDS: participant_id is the subject id, diagnosis the group, n/a a missing value."""
    path = write(tmp_path, "participants.tsv",
                 "participant_id\tdiagnosis\tage\tsex\tedss\n"
                 "sub-01\tNMOSD\t41.5\tF\t2.0\n"
                 "sub-02\tNMOSD\t38\tn/a\tn/a\n"
                 "sub-03\tHC\t29\tM\tn/a\n"
                 "sub-04\tHC\t33\tfemale\tn/a\n")
    cohort = read_cohort(path)
    assert list(cohort.data["subject_id"]) == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert cohort.groups == ("NMOSD", "HC")
    assert cohort.data["age"].tolist() == [41.5, 38.0, 29.0, 33.0]
    assert cohort.data["sex"].tolist()[0] == "F" and pd.isna(cohort.data["sex"][1])
    assert cohort.data["sex"].tolist()[2:] == ["M", "F"]
    assert cohort.data["edss"].isna().tolist() == [False, True, True, True]


def test_bids_participants_tsv_with_n_a_age(tmp_path):
    path = write(tmp_path, "participants.tsv",
                 "participant_id\tdiagnosis\tage\nsub-01\tHC\tn/a\nsub-02\tHC\t30\n")
    with raises_naming("column 'age'", "empty", "line(s) 2"):
        read_cohort(path)


def test_plain_tsv(tmp_path):
    path = write(tmp_path, "cohort.tsv", BASIC.replace(",", "\t"))
    cohort = read_cohort(path)
    assert cohort.data["age"].tolist() == [40.0, 50.0, 30.0, 35.0]
    assert cohort.data["sex"].tolist() == ["F", "M", "F", "M"]
    assert cohort.control == "HC" and cohort.patient_groups == ("NMOSD",)


def test_column_mapping_cli_style(tmp_path):
    """--column age=AgeYears style: {canonical: yours}; a label for the report too."""
    path = write(tmp_path, "c.csv", "ID,Diagnosis,AgeYears,Gender,BrainAge\n"
                                    "a,MS,30,f,40\nb,MS,40,m,45.5\nc,Control,50,f,49\nd,Control,60,m,61\n")
    cohort = read_cohort(path, control="Control",
                         columns={"subject_id": "ID", "group": "Diagnosis", "age": "AgeYears", "sex": "Gender",
                                  "brain_age": "BrainAge"},
                         labels={"age": "Age (years)"})
    assert {"subject_id", "group", "age", "sex", "brain_age", "bag"} <= set(cohort.data.columns)
    assert "AgeYears" not in cohort.data.columns
    assert cohort.groups == ("MS", "Control") and cohort.control == "Control"
    assert cohort.data["sex"].tolist() == ["F", "M", "F", "M"]
    assert cohort.label("age") == "Age (years)"
    assert cohort.label("sex") == "Female, n (%)"  # the paper's wording when no label is given
    assert cohort.data["bag"].tolist() == [10.0, 5.5, -1.0, 1.0]


def test_column_mapping_json_file(tmp_path):
    path = write(tmp_path, "c.csv", "ID,Dx,Age,EDSS_bl\na,NMOSD,30,2\nb,NMOSD,40,3.5\nc,HC,50,\nd,HC,60,\n")
    mapping = write(tmp_path, "mapping.json", json.dumps({
        "columns": {"subject_id": "ID", "group": "Dx", "age": "Age", "edss": "EDSS_bl"},
        "labels": {"edss": "Baseline EDSS"}}))
    cohort = read_cohort(path, mapping_file=mapping)
    assert cohort.data["subject_id"].tolist() == ["a", "b", "c", "d"]
    assert cohort.data["edss"].tolist()[:2] == [2.0, 3.5] and cohort.data["edss"][2:].isna().all()
    assert cohort.label("edss") == "Baseline EDSS"


def test_column_mapping_flat_json_and_cli_override(tmp_path):
    """A flat JSON {canonical: yours} works; a CLI-style mapping given too wins over the file."""
    path = write(tmp_path, "c.csv", "ID,Dx,Age,AgeAtScan\na,X,30,31\nb,X,40,41\nc,HC,50,51\nd,HC,60,61\n")
    mapping = write(tmp_path, "mapping.json", json.dumps({"subject_id": "ID", "group": "Dx", "age": "Age"}))
    cohort = read_cohort(path, mapping_file=mapping, columns={"age": "AgeAtScan"})
    assert cohort.data["age"].tolist() == [31.0, 41.0, 51.0, 61.0]


def test_column_mapping_csv_file(tmp_path):
    path = write(tmp_path, "c.csv", "ID,Dx,Age\na,X,30\nb,X,40\nc,HC,50\nd,HC,60\n")
    mapping = write(tmp_path, "mapping.csv", "canonical,yours\nsubject_id,ID\ngroup,Dx\nage,Age\n")
    cohort = read_cohort(path, mapping_file=mapping)
    assert cohort.data["age"].tolist() == [30.0, 40.0, 50.0, 60.0]


def test_group_order_kept_as_given(tmp_path):
    """File order by default (RRMS first seen, then HC, then NMOSD); groups= sets another order."""
    path = write(tmp_path, "c.csv", "subject_id,group,age\n1,RRMS,30\n2,HC,31\n3,NMOSD,32\n4,RRMS,33\n"
                                    "5,NMOSD,34\n6,HC,35\n")
    assert read_cohort(path).groups == ("RRMS", "HC", "NMOSD")
    assert read_cohort(path).patient_groups == ("RRMS", "NMOSD")
    chosen = read_cohort(path, groups=["NMOSD", "RRMS", "HC"])
    assert chosen.groups == ("NMOSD", "RRMS", "HC") and chosen.patient_groups == ("NMOSD", "RRMS")
    only_two = read_cohort(path, groups=["NMOSD", "HC"])
    assert only_two.groups == ("NMOSD", "HC") and len(only_two) == 4
    assert set(only_two.data["group"]) == {"NMOSD", "HC"}
    none = read_cohort(path, control=None)
    assert none.control is None and none.patient_groups == ("RRMS", "HC", "NMOSD")


# --- derived columns -----------------------------------------------------------------------------

def test_bag_and_nbv_derived(tmp_path):
    """bag = brain_age - age: 52.5 - 40 = 12.5, 45 - 50 = -5; nbv = 1100 / 1375 = 0.8,
    1200 / 1600 = 0.75 (and NaN where a volume is missing)."""
    path = write(tmp_path, "c.csv", "subject_id,group,age,brain_age,brain_volume_ml,icv_ml\n"
                                    "s1,HC,40,52.5,1100,1375\ns2,HC,50,45,1200,1600\ns3,HC,30,30,,1500\n")
    data = read_cohort(path).data
    assert data["bag"].tolist() == [12.5, -5.0, 0.0]
    assert data["nbv"][:2].tolist() == pytest.approx([0.8, 0.75])
    assert math.isnan(data["nbv"][2])


def test_nbv_given_is_kept(tmp_path):
    path = write(tmp_path, "c.csv", "subject_id,group,age,brain_volume_ml,icv_ml,nbv\n"
                                    "s1,HC,40,1100,1375,0.7\ns2,HC,50,1200,1600,0.71\n")
    assert read_cohort(path).data["nbv"].tolist() == [0.7, 0.71]


def test_worsening_threshold_rule():
    """The paper: a rise of >= 1.0 when baseline <= 5.5, >= 0.5 when baseline > 5.5."""
    assert worsening_threshold([0.0, 5.5, 6.0, 9.5]).tolist() == [1.0, 1.0, 0.5, 0.5]


VISITS_COHORT = """subject_id,group,age,edss
a,NMOSD,40,5.5
b,NMOSD,41,6.0
c,NMOSD,42,5.5
d,RRMS,43,2.0
e,RRMS,44,6.5
f,RRMS,45,1.0
g,HC,30,3.0
h,HC,31,
"""
VISITS = """subject_id,years,edss
a,1,6.0
a,2,6.5
a,3,7.0
b,1.5,6.5
c,1,5.5
c,4,6.0
d,3,3.0
d,1,2.5
d,5,4.0
e,2,6.5
e,3,7.0
g,0,3.0
g,2,2.5
h,0,4.0
h,1,5.0
"""


def test_worsening_from_visits_by_hand(tmp_path):
    """Worked by hand from the tables above (VISITS_COHORT, VISITS):

    a: baseline 5.5 -> needs +1.0: 1y 6.0 (+0.5 no), 2y 6.5 (+1.0 yes)  -> worsening 1 at 2.0
    b: baseline 6.0 -> needs +0.5: 1.5y 6.5 (+0.5 yes)                  -> worsening 1 at 1.5
    c: baseline 5.5 -> needs +1.0: 1y 5.5, 4y 6.0 (+0.5 no)             -> 0, censored at 4.0
    d: baseline 2.0, rows out of order; sorted 1y 2.5 (no), 3y 3.0 (+1.0 yes), 5y 4.0
                                                                      -> 1 at 3.0 (first event)
    e: baseline 6.5 -> needs +0.5: 2y 6.5 (no), 3y 7.0 (yes)            -> 1 at 3.0
    f: no visits                                                      -> both missing
    g: year-0 visit 3.0 agrees with baseline; 2y 2.5 (a fall)         -> 0, censored at 2.0
    h: baseline empty in the cohort, taken from the year-0 visit 4.0; 1y 5.0 (+1.0) -> 1 at 1.0
    """
    cohort = read_cohort(write(tmp_path, "c.csv", VISITS_COHORT), visits=write(tmp_path, "v.csv", VISITS))
    got = cohort.data.set_index("subject_id")
    expected_worsening = {"a": 1, "b": 1, "c": 0, "d": 1, "e": 1, "g": 0, "h": 1}
    expected_years = {"a": 2.0, "b": 1.5, "c": 4.0, "d": 3.0, "e": 3.0, "g": 2.0, "h": 1.0}
    for subject, worsening in expected_worsening.items():
        assert got.loc[subject, "worsening"] == worsening, subject
        assert got.loc[subject, "followup_years"] == expected_years[subject], subject
    assert math.isnan(got.loc["f", "worsening"]) and math.isnan(got.loc["f", "followup_years"])
    assert math.isnan(got.loc["h", "edss"])  # the cohort's own baseline column is left as given


def test_visits_of_groups_left_out_are_ignored(tmp_path):
    """groups=["NMOSD", "HC"] with a visits table that also covers RRMS patients (in the cohort
    file, not selected): no error; a (NMOSD, baseline 5.5, 2y 6.5: +1.0) worsens at 2.0."""
    cohort = read_cohort(write(tmp_path, "c.csv", VISITS_COHORT), visits=write(tmp_path, "v.csv", VISITS),
                         groups=["NMOSD", "HC"])
    got = cohort.data.set_index("subject_id")
    assert cohort.groups == ("NMOSD", "HC") and "d" not in got.index
    assert got.loc["a", "worsening"] == 1 and got.loc["a", "followup_years"] == 2.0


def test_derive_worsening_function():
    """derive_worsening straight: baseline 5.5 with a +0.9 rise is no event, censored at its last
    visit (2.5); baseline 6.0 with +0.5 at 0.5 y is an event at 0.5, followed until 1.0; year-0 rows
    are ignored. Columns: worsening, followup_years (time to event or censoring), followup_total_years."""
    baseline = pd.Series({"p": 5.5, "q": 6.0})
    visits = pd.DataFrame({"subject_id": ["p", "p", "q", "q", "q"], "years": [0.0, 2.5, 0.0, 0.5, 1.0],
                           "edss": [5.5, 6.4, 6.0, 6.5, 6.0]})
    out = derive_worsening(baseline, visits)
    assert list(out.columns) == ["worsening", "followup_years", "followup_total_years"]
    assert out.loc["p"].tolist() == [0.0, 2.5, 2.5]
    assert out.loc["q"].tolist() == [1.0, 0.5, 1.0]


def test_worsening_from_edss_followup_columns(tmp_path):
    """edss_followup instead of visits: 5.5 -> 6.0 is +0.5 < 1.0 (no); 6.0 -> 6.5 is +0.5 (yes);
    2.0 -> 3.0 is +1.0 (yes); no follow-up -> missing."""
    path = write(tmp_path, "c.csv", "subject_id,group,age,edss,edss_followup,followup_years\n"
                                    "s1,NMOSD,40,5.5,6.0,4\ns2,NMOSD,41,6.0,6.5,3\ns3,RRMS,42,2.0,3.0,5\n"
                                    "s4,RRMS,43,1.0,,\n")
    data = read_cohort(path, control=None).data
    assert data["worsening"][:3].tolist() == [0.0, 1.0, 1.0]
    assert math.isnan(data["worsening"][3])


def test_visits_tsv_is_read(tmp_path):
    visits = write(tmp_path, "visits.tsv", "subject_id\tyears\tedss\ns1\t1\t2.5\ns1\t2\t3\n")
    frame = read_visits(visits)
    assert frame["years"].tolist() == [1.0, 2.0] and frame["edss"].tolist() == [2.5, 3.0]


def test_many_rows_load(tmp_path):
    """2 000 generated rows load with the right groups and values (timings are benchmarks, not tests)."""
    rows = "\n".join(f"s{i},{'HC' if i % 2 else 'MS'},{20 + i % 50},{'F' if i % 3 else 'M'}" for i in range(2000))
    cohort = read_cohort(write(tmp_path, "big.csv", "subject_id,group,age,sex\n" + rows + "\n"))
    assert len(cohort) == 2000 and cohort.groups == ("MS", "HC")
    assert np.isclose(cohort.data["age"].mean(), np.mean([20 + i % 50 for i in range(2000)]))

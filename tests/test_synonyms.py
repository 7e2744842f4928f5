"""Synonym replacement from WordNet's database files (``--positive synonym[:K]``, the paper's Table 1)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from simcse_analysis.errors import InputError
from trainers import synonyms
from trainers.synonyms import STOP_WORDS, WordNet, load_wordnet, synonym_replacement
from trainers.views import parse_positive, positive_name

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"
#: A miniature WordNet in the exact WNDB format (index: lemma pos n_synsets n_pointers [ptrs] n_senses
#: n_tagged offsets…; data: offset lexfile type n_words(hex) word lex_id … n_pointers … | gloss).
MINI = {
    "index.noun": "car n 2 1 @ 2 0 00000100 00000200  \nautomobile n 1 1 @ 1 0 00000100  \n"
                  "dog n 1 1 @ 1 0 00000300  \nmouse n 1 0 1 0 00000600  \nphilosophy n 1 0 1 0 00000700  \n",
    "data.noun": "00000100 06 n 03 car 0 auto 0 automobile 0 000 | a motor vehicle  \n"
                 "00000200 06 n 02 car 0 railcar 0 000 | a wheeled vehicle  \n"
                 "00000300 05 n 02 dog 0 domestic_dog 0 000 | a domesticated canid  \n"
                 "00000600 05 n 02 mouse 0 computer_mouse 0 000 | a hand-operated device  \n"
                 "00000700 09 n 02 philosophy 0 doctrine 0 000 | a belief  \n",
    "noun.exc": "mice mouse\n",
    "index.verb": "run v 1 1 @ 1 0 00000400  \n",
    "data.verb": "00000400 38 v 02 run 0 scamper 0 000 | move fast  \n",
    "verb.exc": "ran run\n",
    "index.adj": "quick a 1 0 1 0 00000500  \n",
    "data.adj": "00000500 00 s 02 quick 0 speedy(a) 0 000 | fast  \n",
    "adj.exc": "",
    "index.adv": "",
    "data.adv": "",
    "adv.exc": "",
}


def write_mini_wordnet(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in MINI.items():
        (root / name).write_text((HEADER if name.startswith(("index", "data")) else "") + body, encoding="utf-8")
    return root


@pytest.fixture()
def mini(tmp_path) -> WordNet:
    return WordNet.load(write_mini_wordnet(tmp_path / "wn"))


def test_synonyms_come_from_every_sense_most_frequent_first(mini):
    assert mini.synonyms("car") == ["auto", "automobile", "railcar"]
    assert mini.synonyms("Car") == ["auto", "automobile", "railcar"]
    assert mini.synonyms("automobile") == ["car", "auto"]
    assert mini.synonyms("quick") == ["speedy"]  # the adjective marker "(a)" is not part of the word
    assert mini.synonyms("dog") == ["domestic dog"]
    assert mini.synonyms("unknown") == [] and mini.synonyms("philosophy") == ["doctrine"]


def test_morphy_finds_base_forms_by_rules_and_exceptions(mini):
    assert mini.base_forms("cars", "noun") == ["car"]
    assert mini.base_forms("mice", "noun") == ["mouse"]
    assert mini.base_forms("ran", "verb") == ["run"] and mini.base_forms("running", "verb") == []  # only listed forms
    assert mini.synonyms("dogs") == ["domestic dog"] and mini.synonyms("ran") == ["scamper"]


def test_replacement_count_case_and_punctuation(mini):
    text = "The Car, a dog and the automobile ran quick."
    # n = 9 words; eligible: Car, dog, automobile, ran, quick (stop words and "a"/"the"/"and" never)
    for seed in range(50):
        out = synonym_replacement(text, 0.3, random.Random(seed), mini)
        words, new = text.split(), out.replace("domestic dog", "domestic_dog").split()
        changed = [i for i, (a, b) in enumerate(zip(words, new)) if a != b]
        assert len(new) == len(words)
        assert len(changed) in (2, 3)  # max(1, r(0.3 · 9)) = r(2.7)
        assert all(words[i].lower().strip(",.") not in STOP_WORDS for i in changed)
        if 1 in changed:
            assert new[1] in ("Auto,", "Automobile,", "Railcar,")  # capital and comma kept
        if 7 in changed:
            assert new[7] == "scamper"
    assert synonym_replacement(text, 0.3, random.Random(3), mini) == synonym_replacement(text, 0.3,
                                                                                          random.Random(3), mini)


def test_at_least_one_word_and_unreplaceable_sentences_unchanged(mini):
    assert synonym_replacement("the dog", 0.01, random.Random(0), mini) == "the domestic dog"
    assert synonym_replacement("it is what it is", 0.5, random.Random(0), mini) == "it is what it is"


def test_positive_spec_loads_wordnet_from_wordnet_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WORDNET_DIR", str(write_mini_wordnet(tmp_path / "wn")))
    view = parse_positive("synonym:0.5")
    assert positive_name(view) == "synonym:0.5" and positive_name(parse_positive("synonym")) == "synonym"
    first, second = view(["the dog ran"], random.Random(0))
    assert first == ["the dog ran"] and second[0] != "the dog ran"
    # the paper's row: exactly one word, however long the sentence
    one = parse_positive("synonym")
    text = "The Car, a dog and the automobile ran quick."
    for seed in range(20):
        new = one([text], random.Random(seed))[1][0].replace("domestic dog", "domestic_dog").split()
        assert sum(a != b for a, b in zip(text.split(), new)) == 1


def test_missing_wordnet_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(synonyms, "wordnet_candidates", lambda: [tmp_path / "nothing"])
    with pytest.raises(InputError, match="data --download --only wordnet"):
        parse_positive("synonym")
    half = write_mini_wordnet(tmp_path / "half")
    (half / "data.verb").unlink()
    with pytest.raises(InputError, match="data.verb is missing"):
        WordNet.load(half)


def test_real_wordnet_when_installed():
    try:
        wn = load_wordnet()
    except InputError:
        pytest.skip("WordNet is not installed here (`make wordnet` installs Debian's wordnet-base)")
    assert {"auto", "automobile", "motorcar"} <= set(wn.synonyms("car"))
    assert "domestic dog" in wn.synonyms("dogs") and "scat" in wn.synonyms("ran")
    assert len(wn.index["noun"]) > 100_000 and len(wn.synsets["noun"]) == 82_115  # WordNet 3.0's noun synsets

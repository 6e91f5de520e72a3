//! `ppisc explain`: every diagnostic code has a page, in the order of `CODES`; for the
//! front-end codes (E00xx-E03xx, W0001) the wrong example really reports the code and the
//! right example checks without any diagnostic.

mod common;

use common::FakeTargets;
use ppis_lang::diag::CODES;
use ppis_lang::explain::{page, page_entry, Example, ExampleLanguage, EXAMPLE_MODULES, PAGES};
use ppis_lang::modules::TableLoader;
use ppis_lang::{check_program, CheckOptions};

/// Codes the front end (`check_source`) reports; the others are the verifier's and the code
/// generator's, tested where those run.
fn is_front_end(code: &str) -> bool {
    code == "W0001"
        || code.starts_with("W01")
        || (code.starts_with("W00") && code != "W0000")
        || code[1..].parse::<u32>().is_ok_and(|number| code.starts_with('E') && number < 400)
}

/// Checked as `ppisc check` does, with the `example::` modules the module pages use.
fn codes_of(source: &str) -> Vec<&'static str> {
    let loader = TableLoader { modules: EXAMPLE_MODULES };
    let (_, diagnostics, _) = check_program("example.ppl", source, &FakeTargets, &loader, &CheckOptions::default());
    diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn every_code_has_a_page() {
    let missing: Vec<&str> = CODES.iter().map(|info| info.code).filter(|code| page(code).is_none()).collect();
    assert!(missing.is_empty(), "add pages to lang/src/explain.rs for: {missing:?}");
    let table: Vec<&str> = PAGES.iter().map(|page| page.code).collect();
    let codes: Vec<&str> = CODES.iter().map(|info| info.code).collect();
    assert_eq!(table, codes, "PAGES holds one page per code, in the order of CODES");
}

#[test]
fn front_end_examples_do_what_they_say() {
    let mut failures = Vec::new();
    for page in PAGES.iter().filter(|page| is_front_end(page.code)) {
        assert_eq!(page.language, ExampleLanguage::Ppl, "{}: front-end examples are .ppl", page.code);
        let wrong = codes_of(&page.wrong.source());
        if !wrong.contains(&page.code) {
            failures.push(format!("{}: the wrong example reports {wrong:?}", page.code));
        }
        let right = codes_of(&page.right.source());
        if !right.is_empty() {
            failures.push(format!("{}: the right example reports {right:?}", page.code));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn examples_are_formatted() {
    // Pages teach the canonical layout, so every .ppl example that parses is `ppisc fmt`-clean.
    for page in PAGES.iter().filter(|page| page.language == ExampleLanguage::Ppl) {
        for example in [page.right, page.wrong] {
            if let Example::Text(text) = example {
                if let Ok(formatted) = ppis_lang::fmt::format_source(text) {
                    assert_eq!(formatted, text, "{}: example not in `ppisc fmt` layout", page.code);
                }
            }
        }
    }
}

#[test]
fn lookup_is_case_insensitive_and_unknown_codes_have_none() {
    assert_eq!(page_entry("e0102").map(|page| page.code), Some("E0102"));
    assert!(page("E9999").is_none());
    assert!(page("").is_none());
}

#[test]
fn page_layout() {
    insta::assert_snapshot!(page("E0208").expect("E0208 has a page"));
}

//! The README's language tour is real code: it must pass `ppisc check`, so the first thing a
//! reader copies works.

use ppis_tests::{run_ppisc, scratch_dir, workspace_root, write_file};

/// The first fenced block after the tour's heading.
fn tour(readme: &str) -> Option<String> {
    let after_heading = &readme[readme.find("## The language in ten lines")?..];
    let block_start = after_heading.find("```")?;
    let body = &after_heading[block_start + 3..];
    let body = &body[body.find('\n')? + 1..];
    Some(body[..body.find("```")?].to_string())
}

#[test]
fn the_readme_tour_checks_clean() {
    let readme_path = workspace_root().join("README.md");
    let readme =
        std::fs::read_to_string(&readme_path).unwrap_or_else(|error| panic!("{}: {error}", readme_path.display()));
    let tour = tour(&readme).expect("README.md has a `## The language in ten lines` section with a code block");
    assert!(tour.lines().count() >= 8, "the tour is suspiciously short:\n{tour}");
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "readme_tour");
    write_file(&dir, "tour.ppl", &tour);
    let outcome = run_ppisc(&dir, ["check", "tour.ppl"]);
    outcome.assert_success();
}

#[test]
fn the_tour_extractor_finds_only_the_tour_block() {
    let readme =
        "# x\n```sh\nnot this\n```\n## The language in ten lines\n\n```\nmap a: count;\n```\n```\nnor this\n```\n";
    assert_eq!(tour(readme).as_deref(), Some("map a: count;\n"));
    assert_eq!(tour("no tour here"), None);
}

//! `docs/language.md` stays true: every ```` ```ppl ```` block in it is checked with the real
//! `ppisc check` on this host. A plain block must check clean; a block tagged `error=CODE`
//! must be rejected with that code.

use ppis_tests::{require_kernel, run_ppisc, scratch_dir, workspace_root, write_file};

/// One extracted block: where it starts, its expected error code (if any) and its text.
struct Block {
    line: usize,
    expect_error: Option<String>,
    source: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in markdown.lines().enumerate() {
        match open.take() {
            Some(block) if line.trim_start().starts_with("```") => blocks.push(block),
            Some(mut block) => {
                block.source.push_str(line);
                block.source.push('\n');
                open = Some(block);
            }
            None => {
                let Some(info) = line.trim_start().strip_prefix("```ppl") else { continue };
                let expect_error =
                    info.split_whitespace().find_map(|word| word.strip_prefix("error=")).map(String::from);
                open = Some(Block { line: index + 1, expect_error, source: String::new() });
            }
        }
    }
    assert!(open.is_none(), "an unclosed ```ppl block in docs/language.md");
    blocks
}

#[test]
fn extraction_finds_blocks_and_their_expectations() {
    let text = "x\n```ppl\nmap a: count;\n```\n```ppl error=E0410\nprobe q {}\n```\n```text\nno\n```\n";
    let found = blocks(text);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].line, found[0].expect_error.as_deref()), (2, None));
    assert_eq!(found[1].expect_error.as_deref(), Some("E0410"));
    assert_eq!(found[1].source, "probe q {}\n");
}

#[test]
fn every_example_in_the_language_guide_checks_as_documented() {
    // Tracepoint fields come from tracefs, which needs root (and may need mounting).
    if !require_kernel("every_example_in_the_language_guide_checks_as_documented") {
        return;
    }
    let guide = workspace_root().join("docs/language.md");
    let markdown = std::fs::read_to_string(&guide).expect("docs/language.md");
    let blocks = blocks(&markdown);
    assert!(blocks.len() >= 8, "only {} ppl blocks in docs/language.md", blocks.len());
    let dir = scratch_dir(env!("CARGO_TARGET_TMPDIR"), "language_doc");
    let mut failures = Vec::new();
    for block in &blocks {
        let file = write_file(&dir, &format!("line{}.ppl", block.line), &block.source);
        let outcome = run_ppisc(&dir, ["check", "--color", "never", &file.to_string_lossy()]);
        outcome.assert_no_crash();
        let output = format!("{}{}", outcome.stdout, outcome.stderr);
        let verdict = match (&block.expect_error, outcome.code()) {
            (None, Some(0)) => Ok(()),
            (None, _) => Err("expected to check clean".to_string()),
            (Some(code), Some(1)) if output.contains(&format!("[{code}]")) => Ok(()),
            (Some(code), _) => Err(format!("expected error {code}")),
        };
        if let Err(why) = verdict {
            failures.push(format!("docs/language.md:{}: {why}, got:\n{output}", block.line));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

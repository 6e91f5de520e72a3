//! Generates the parser from `src/grammar.lalrpop` into `OUT_DIR/grammar.rs`.

fn main() {
    lalrpop::Configuration::new()
        .emit_rerun_directives(true)
        .process_current_dir()
        .expect("src/grammar.lalrpop failed to generate a parser");
}

// SPDX-License-Identifier: GPL-2.0

//! `vtierctl completions` and `vtierctl man`: generated from the same
//! definitions the tool parses, they must name its subcommands and their
//! options.

use std::process::{Command, Output};

const VTIERCTL: &str = env!("CARGO_BIN_EXE_vtierctl");

fn vtierctl(args: &[&str]) -> Output {
    Command::new(VTIERCTL).args(args).output().unwrap()
}

fn stdout_of(args: &[&str]) -> String {
    let out = vtierctl(args);
    assert!(
        out.status.success(),
        "vtierctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_name_the_subcommands_and_their_options() {
    for shell in ["bash", "zsh", "fish"] {
        let text = stdout_of(&["completions", shell]);
        // (fish names a long option without its dashes: `-l key-file`.)
        for word in [
            "assemble", "format", "check", "key-file", "capacity", "dry-run",
        ] {
            assert!(text.contains(word), "{shell} completions lack {word}");
        }
    }
    assert_eq!(vtierctl(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_for_the_tool_and_each_subcommand() {
    let page = stdout_of(&["man"]);
    assert!(page.contains(".TH vtierctl 8"), "{page}");
    for sub in ["assemble", "stop", "format", "check", "dump", "probe"] {
        assert!(page.contains(sub), "the main page does not list {sub}");
        let sub_page = stdout_of(&["man", sub]);
        assert!(
            sub_page.contains(&format!(".TH vtierctl-{sub} 8")),
            "{sub}: {sub_page}"
        );
    }
    assert!(stdout_of(&["man", "assemble"]).contains("\\-\\-key\\-file"));
    let out = vtierctl(&["man", "no-such-command"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no subcommand no-such-command"));
}

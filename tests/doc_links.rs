//! Every relative link and image in README.md and docs/ (recursively) points at a file
//! or directory that exists, so a reader never follows a link to nothing. Links out of
//! the repository (`https:`, `mailto:`) and in-page anchors are not followed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag};

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The relative link targets of one Markdown file: links and images, without
/// `#fragment`s.
fn relative_targets(text: &str) -> Vec<String> {
    Parser::new_ext(text, Options::ENABLE_TABLES)
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.into_string())
            }
            _ => None,
        })
        .filter(|url| !url.contains("://") && !url.starts_with("mailto:") && !url.starts_with('#'))
        .map(|url| url.split('#').next().unwrap_or_default().to_owned())
        .filter(|url| !url.is_empty())
        .collect()
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    markdown_files(&root.join("docs"), &mut files);
    assert!(files.len() > 5, "{files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for target in relative_targets(&text) {
            checked += 1;
            let decoded = target.replace("%20", " ");
            if !dir.join(&decoded).exists() {
                broken.push(format!(
                    "{}: {target}",
                    file.strip_prefix(root).unwrap().display()
                ));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} links found: is the parser reading links?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_links_images_and_skips_the_outside_world() {
    let md = "[a](docs/x.md#part) ![b](img/y.png) [c](https://example.org) [d](#top) [e](mailto:x@y)\n\n| t |\n|---|\n| [f](z.md) |\n";
    assert_eq!(relative_targets(md), ["docs/x.md", "img/y.png", "z.md"]);
}

#[test]
fn the_readme_is_read_in_two_minutes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.len() < 12_000,
        "README.md is {} characters",
        readme.len()
    );
    for must in [
        "cargo run --release -- simulate",
        "scripts/test.sh",
        "docs/library.md",
        "docs/gateway.md",
        "docs/redis.md",
        "docs/lab.md",
        "docs/benchmarks.md",
        "docs/design.md",
        "docs/img/report-html.png",
    ] {
        assert!(readme.contains(must), "README.md lacks {must}");
    }
}

//! `report.html`: one self-contained page for a report — the same Markdown the `.md`
//! report holds, rendered to HTML (pulldown-cmark), with every plot inlined as SVG,
//! tables that sort when a header is clicked, and a layout that reads on a phone.
//!
//! The guarantees:
//! - the page loads nothing: styles and the one small script are inline, plots are
//!   inline SVG (a PNG without an SVG twin becomes a `data:` URI), and links to other
//!   files stay plain links;
//! - it says what the Markdown report says, because it is rendered from it: a section
//!   added to `report.md` (or to the benchmark's README) appears here with no change to
//!   this module;
//! - the script only sorts tables and marks the page ready (`<html data-ready="1">`),
//!   so a headless browser can tell that it ran without error.

mod page;

use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use crate::Error;

/// The HTML report in an output directory.
pub const HTML_FILE: &str = "report.html";

/// Writes `markdown` (whose relative links and images are relative to `dir`) as
/// `dir/file`, titled `title`.
pub fn write(markdown: &str, dir: &Path, file: &str, title: &str) -> Result<PathBuf, Error> {
    let html = page::page(title, &body(markdown, dir));
    let path = dir.join(file);
    std::fs::write(&path, html).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The page body: `markdown` as HTML, plots inlined, tables wrapped to scroll on a
/// narrow screen and marked sortable.
pub fn body(markdown: &str, dir: &Path) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut events: Vec<Event<'_>> = Vec::new();
    // An image being read: its URL and alt text so far.
    let mut image: Option<(String, String)> = None;
    let mut skip_link = false;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => {
                image = Some((dest_url.into_string(), String::new()));
            }
            Event::End(TagEnd::Image) => {
                if let Some((url, alt)) = image.take() {
                    events.push(Event::Html(figure(dir, &url, &alt).into()));
                }
            }
            Event::Text(t) | Event::Code(t) if image.is_some() => {
                if let Some((_, alt)) = image.as_mut() {
                    alt.push_str(&t);
                }
            }
            _ if image.is_some() => {}
            // "[SVG](x.svg)" beside a plot: the plot is inline already.
            Event::Start(Tag::Link { dest_url, .. }) if is_plot_twin(dir, &dest_url) => {
                skip_link = true;
            }
            Event::End(TagEnd::Link) if skip_link => skip_link = false,
            _ if skip_link => {}
            Event::Start(Tag::Table(a)) => {
                events.push(Event::Html("<div class=\"scroll\">".into()));
                events.push(Event::Start(Tag::Table(a)));
            }
            Event::End(TagEnd::Table) => {
                events.push(Event::End(TagEnd::Table));
                events.push(Event::Html("</div>".into()));
            }
            other => events.push(other),
        }
    }
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// True for a link to an SVG that sits beside a PNG of the same name (a plot's twin).
fn is_plot_twin(dir: &Path, url: &str) -> bool {
    is_local(url)
        && url.ends_with(".svg")
        && dir
            .join(url.trim_end_matches(".svg").to_owned() + ".png")
            .is_file()
}

fn is_local(url: &str) -> bool {
    !url.contains("://") && !url.starts_with("data:") && !url.starts_with('#')
}

/// An image as an inline figure: its SVG twin inlined when there is one, else the
/// image itself as a `data:` URI; a remote or missing image stays a plain link.
fn figure(dir: &Path, url: &str, alt: &str) -> String {
    if is_local(url) {
        let svg = dir.join(Path::new(url).with_extension("svg"));
        if let Ok(text) = std::fs::read_to_string(&svg) {
            return format!("<figure>{}</figure>", inline_svg(&text, alt));
        }
        if let Ok(bytes) = std::fs::read(dir.join(url)) {
            let mime = match Path::new(url).extension().and_then(|e| e.to_str()) {
                Some("png") => "image/png",
                Some("jpg" | "jpeg") => "image/jpeg",
                Some("svg") => "image/svg+xml",
                _ => "application/octet-stream",
            };
            return format!(
                "<figure><img alt=\"{}\" src=\"data:{mime};base64,{}\"></figure>",
                page::escape(alt),
                page::base64(&bytes)
            );
        }
    }
    format!(
        "<figure><a href=\"{}\">{}</a></figure>",
        page::escape(url),
        page::escape(if alt.is_empty() { url } else { alt })
    )
}

/// An SVG document as markup to place in HTML: without its XML declaration or doctype,
/// sized by the page (its viewBox keeps the proportions), labelled with `alt`.
fn inline_svg(text: &str, alt: &str) -> String {
    let start = text.find("<svg").unwrap_or(0);
    let svg = &text[start..];
    // The fixed pixel size would overflow a phone; CSS sizes it, the viewBox scales it.
    let mut out = String::with_capacity(svg.len());
    if let Some(end) = svg.find('>') {
        let open = &svg[..end];
        let open = strip_attr(&strip_attr(open, "width"), "height");
        out.push_str(&open);
        out.push_str(&format!(
            " role=\"img\" aria-label=\"{}\"",
            page::escape(alt)
        ));
        out.push_str(&svg[end..]);
    } else {
        out.push_str(svg);
    }
    out
}

/// `tag` without its first ` name="..."` attribute.
fn strip_attr(tag: &str, name: &str) -> String {
    let needle = format!(" {name}=\"");
    match tag.find(&needle) {
        Some(i) => {
            let rest = &tag[i + needle.len()..];
            match rest.find('"') {
                Some(j) => format!("{}{}", &tag[..i], &rest[j + 1..]),
                None => tag.to_owned(),
            }
        }
        None => tag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_loses_its_fixed_size_but_keeps_its_viewbox() {
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"1400\" height=\"620\" viewBox=\"0 0 1400 620\" xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"5\"/></svg>";
        let out = inline_svg(svg, "a & b");
        assert!(out.starts_with("<svg viewBox=\"0 0 1400 620\""), "{out}");
        assert!(
            out.contains("<rect width=\"5\"/>"),
            "inner sizes stay: {out}"
        );
        assert!(!out.contains("<?xml"));
        assert!(out.contains("aria-label=\"a &amp; b\""), "{out}");
    }

    #[test]
    fn plots_are_inlined_tables_wrapped_and_svg_links_dropped() {
        let dir = std::env::temp_dir().join(format!("ratelab-html-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("p.png"), b"\x89PNG").unwrap();
        std::fs::write(
            dir.join("p.svg"),
            "<svg width=\"10\" height=\"5\" viewBox=\"0 0 10 5\"><circle r=\"1\"/></svg>",
        )
        .unwrap();
        std::fs::write(dir.join("only.png"), b"abc").unwrap();
        let md = "# T\n\n![Plot](p.png)\n\n[SVG](p.svg)\n\n![Other](only.png)\n\n| a | b |\n|---|--:|\n| x | 1 |\n\n[elsewhere](https://example.org)\n";
        let html = body(md, &dir);
        assert!(
            html.contains(
                "<figure><svg viewBox=\"0 0 10 5\" role=\"img\" aria-label=\"Plot\"><circle"
            ),
            "{html}"
        );
        assert!(!html.contains("p.svg"), "{html}");
        assert!(
            html.contains("src=\"data:image/png;base64,YWJj\""),
            "{html}"
        );
        assert!(html.contains("<div class=\"scroll\"><table>"), "{html}");
        assert!(
            html.contains("href=\"https://example.org\""),
            "links stay links"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

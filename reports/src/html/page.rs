//! The page around a report's body: inline styles that read on a phone and a desktop,
//! and the one small script (table sorting, the ready mark).

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding), for the rare image without an SVG twin.
/// Twenty lines rather than a dependency for one call per report.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The whole page: `body` (HTML) under `title`.
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<main>\n{body}</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        escape(title)
    )
}

/// Readable from 320 px up: text in a column, wide tables scroll on their own, plots
/// scale to the width.
const STYLE: &str = r#"
:root { color-scheme: light; --fg: #1d2330; --muted: #5b6474; --rule: #d9dee7; --head: #f3f5f9; --accent: #2456c8; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: #fff; overflow-wrap: anywhere; }
main { max-width: 76rem; margin: 0 auto; padding: 1rem clamp(0.75rem, 3vw, 2rem) 3rem; }
h1 { font-size: clamp(1.4rem, 4vw, 2rem); margin: 0.5rem 0 1rem; }
h2 { font-size: 1.35rem; margin-top: 2.2rem; padding-bottom: 0.2rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
a { color: var(--accent); }
blockquote { margin: 1rem 0; padding: 0.6rem 1rem; border-left: 4px solid var(--accent); background: #f5f8ff; }
blockquote p { margin: 0.2rem 0; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--head); padding: 0.05em 0.3em; border-radius: 3px; }
pre { overflow-x: auto; background: var(--head); padding: 0.75rem; border-radius: 4px; }
pre code { background: none; padding: 0; }
.scroll { overflow-x: auto; margin: 0.8rem 0; border: 1px solid var(--rule); border-radius: 4px; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; font-variant-numeric: tabular-nums; }
th, td { padding: 0.35rem 0.6rem; border-bottom: 1px solid var(--rule); white-space: nowrap; }
thead th { background: var(--head); position: sticky; top: 0; cursor: pointer; user-select: none; }
thead th::after { content: " \2195"; color: var(--muted); font-size: 0.8em; }
thead th[aria-sort="ascending"]::after { content: " \2191"; color: var(--fg); }
thead th[aria-sort="descending"]::after { content: " \2193"; color: var(--fg); }
tbody tr:hover { background: #fafbfd; }
figure { margin: 1rem 0; }
figure svg, figure img { display: block; width: 100%; height: auto; background: #fff; }
@media (max-width: 40rem) { body { font-size: 15px; } th, td { padding: 0.3rem 0.45rem; } }
"#;

/// Sorts a table by the clicked (or Enter-pressed) header, numbers as numbers; then
/// marks the page ready and says whether it fits the window's width.
const SCRIPT: &str = r#"
(function () {
  "use strict";
  function number(text) {
    var t = text.replace(/[\s,×%+]/g, "").replace("\u2212", "-");
    if (!/^-?[0-9]*\.?[0-9]+(e-?[0-9]+)?[a-zµ]*$/i.test(t)) return null;
    return parseFloat(t);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
    var heads = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(heads, function (th, column) {
      th.tabIndex = 0;
      th.title = "Sort by this column";
      function sort() {
        var body = table.tBodies[0];
        if (!body) return;
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column] ? a.cells[column].textContent.trim() : "";
          var y = b.cells[column] ? b.cells[column].textContent.trim() : "";
          var nx = number(x), ny = number(y);
          var c = (nx !== null && ny !== null) ? nx - ny : x.localeCompare(y);
          return ascending ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });
  var root = document.documentElement;
  root.setAttribute("data-fits", String(root.scrollWidth <= window.innerWidth + 1));
  root.setAttribute("data-ready", "1");
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = page("a <b>", "<p>x</p>");
        assert!(html.contains("<title>a &lt;b&gt;</title>"));
        // Nothing fetched: no external script, stylesheet or image source.
        for needle in [
            "src=\"http",
            "href=\"http",
            "<link rel=\"stylesheet\"",
            "@import",
            "url(",
        ] {
            assert!(!html.contains(needle), "{needle}");
        }
        assert!(html.contains("data-ready"));
    }
}

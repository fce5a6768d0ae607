//! The gateway configuration: any text either validates or is refused with a located
//! error (never a panic); a configuration that validates, written back by serde from
//! the file's own types, reads back to the same configuration.
#![no_main]

use gateway::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse("fuzz.toml", text) {
        Ok(config) => config,
        Err(e) => {
            // The error is located inside the text (1-based) and renders.
            assert!(e.line >= 1, "{e:?}");
            assert!(e.line <= text.matches('\n').count() + 1, "{e:?}");
            assert!(e.column >= 1, "{e:?}");
            assert!(!e.key.is_empty() && !e.message.is_empty(), "{e:?}");
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let raw = gateway_contract::config::parse(text).expect("the file parsed once already");
    let written = toml::to_string(&raw).expect("a parsed file serialises");
    let back = Config::parse("written.toml", &written)
        .unwrap_or_else(|e| panic!("{text:?} validated, written as {written:?} it does not: {e}"));
    assert_eq!(config, back, "{text:?} written as {written:?}");
});

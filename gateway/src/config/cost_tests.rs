//! The cost words of a route: `cost_from_response` (bucket algorithms only, every tier
//! too) and `cost_from_request`, refused where they do not belong, each mistake at its
//! key.

use http::HeaderName;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse("gw.toml", text)
}

const LLM: &str = "[[route]]\npath = \"/llm\"\nalgorithm = \"token-bucket\"\ncapacity = 1000\nrefill_per_sec = 50\n";

#[test]
fn a_bucket_route_takes_both_cost_headers() {
    let c = parse(&format!(
        "{LLM}cost_from_response = \"X-RateLimit-Cost\"\ncost_from_request = \"x-request-cost\"\n"
    ))
    .unwrap();
    let limits = &c.routes[0].limit;
    assert_eq!(
        limits.cost_from_response,
        Some(HeaderName::from_static("x-ratelimit-cost"))
    );
    assert_eq!(
        limits.cost_from_request,
        Some(HeaderName::from_static("x-request-cost"))
    );
    // Several bucket limits and tiers settle too; the default takes the words as well.
    let several = "[[route]]\npath = \"/llm\"\ncost_from_response = \"x-cost\"\nlimits = [\n  { name = \"minute\", algorithm = \"gcra\", capacity = 100, refill_per_sec = 2 },\n  { name = \"day\", algorithm = \"token-bucket\", capacity = 10000, refill_per_sec = 0.1 },\n]\n[route.tiers.pro]\nlimits = [{ name = \"minute\", algorithm = \"gcra\", capacity = 1000, refill_per_sec = 20 }]\n[default]\nalgorithm = \"gcra\"\ncapacity = 5\nrefill_per_sec = 1\ncost_from_request = \"x-cost\"\n";
    let c = parse(several).unwrap();
    assert!(c.routes[0].limit.cost_from_response.is_some());
    assert!(c.default.unwrap().cost_from_request.is_some());
}

#[test]
fn a_cost_from_the_response_needs_limits_that_can_owe() {
    let window = "[[route]]\npath = \"/llm\"\nalgorithm = \"sliding-window\"\nlimit = 100\nwindow = \"1m\"\ncost_from_response = \"x-cost\"\n";
    let e = parse(window).unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (6, "route[1].cost_from_response"),
        "{e}"
    );
    assert!(e.message.contains("token-bucket or gcra"), "{e}");
    assert!(e.message.contains("sliding-window"), "{e}");
    // A tier whose limit cannot owe is refused too, naming the limit.
    let tier = format!(
        "{LLM}cost_from_response = \"x-cost\"\n[route.tiers.free]\nalgorithm = \"fixed-window\"\nlimit = 10\nwindow = \"1h\"\n"
    );
    let e = parse(&tier).unwrap_err();
    assert_eq!(e.key, "route[1].cost_from_response", "{e}");
    assert!(e.message.contains("fixed-window"), "{e}");
}

#[test]
fn cost_words_are_checked_and_belong_to_routes() {
    let e = parse(&format!("{LLM}cost_from_response = \"not a header\"\n")).unwrap_err();
    assert_eq!(e.key, "route[1].cost_from_response", "{e}");
    assert!(e.message.contains("is not a header name"), "{e}");
    let e = parse(&format!("{LLM}cost_from_request = \"\"\n")).unwrap_err();
    assert_eq!(e.key, "route[1].cost_from_request", "{e}");
    let in_tier =
        format!("{LLM}[route.tiers.pro]\ncapacity = 5000\ncost_from_request = \"x-cost\"\n");
    let e = parse(&in_tier).unwrap_err();
    assert_eq!(e.key, "route[1].tiers.pro.cost_from_request", "{e}");
    let in_entry = "[[route]]\npath = \"/llm\"\nlimits = [{ name = \"m\", algorithm = \"gcra\", capacity = 5, refill_per_sec = 1, cost_from_response = \"x\" }]\n";
    let e = parse(in_entry).unwrap_err();
    assert_eq!(e.key, "route[1].limits[1].cost_from_response", "{e}");
    let per_ip = "[identity.per_ip]\nalgorithm = \"gcra\"\ncapacity = 5\nrefill_per_sec = 1\ncost_from_response = \"x\"\n";
    let e = parse(per_ip).unwrap_err();
    assert!(e.message.contains("belongs to a route"), "{e}");
}

//! Arrival sequences: when each request comes, from which user, to which endpoint.
//!
//! Generation is deterministic: the same workload and seed give the same sequence on
//! every machine (an explicit PRNG, [`crate::rng`], with separate streams for times,
//! users and endpoints, so changing one draw does not reshuffle the others). The
//! sequence is sorted by time and every limiter in a simulation sees exactly the same
//! one, so their decisions can be compared request by request.
//!
//! Within a phase of `rate` per second (or a linear ramp from `rate` to `rate_end`),
//! arrival number `x` in "expected-count space" happens at `Λ⁻¹(x)`, where `Λ(t)` is
//! the expected number of arrivals by `t`. A constant process takes `x = 0, 1, 2, …`
//! (the first arrival at the phase's start), a Poisson process unit-mean exponential
//! gaps in `x` (the time-rescaling theorem), so ramps need no special case.

use limiter_core::Nanos;

use crate::rng::{Alias, Rng, mix};
use crate::workload::{Phase, Process, SECOND, UserDistribution, Workload};

const STREAM_TIMES: u64 = 1;
const STREAM_USERS: u64 = 2;
const STREAM_ENDPOINTS: u64 = 3;
const STREAM_ONOFF: u64 = 4;

/// One request: when, who, where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Nanoseconds from the start of the workload.
    pub at: Nanos,
    /// User index, `0..users`; index 0 is the heaviest user under Zipf.
    pub user: u32,
    /// Endpoint index, `0..endpoints`.
    pub endpoint: u32,
}

/// A workload's arrivals, sorted by time, with the index where each phase starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrivals {
    /// Every arrival, in time order.
    pub list: Vec<Arrival>,
    /// `phase_starts[p]` is the index of phase `p`'s first arrival; one extra entry at
    /// the end holds `list.len()`.
    pub phase_starts: Vec<usize>,
    /// Number of users.
    pub users: u32,
    /// Number of endpoints.
    pub endpoints: u32,
}

impl Arrivals {
    /// Arrivals of phase `p`.
    pub fn phase(&self, p: usize) -> &[Arrival] {
        &self.list[self.phase_starts[p]..self.phase_starts[p + 1]]
    }

    /// The key (user × endpoint pair) of an arrival, as a dense index.
    #[inline]
    pub fn key(&self, a: &Arrival) -> usize {
        a.user as usize * self.endpoints as usize + a.endpoint as usize
    }

    /// Number of distinct keys possible.
    pub fn keys(&self) -> usize {
        self.users as usize * self.endpoints as usize
    }
}

/// Draws users according to the workload's distribution.
enum UserPicker {
    Uniform(u64),
    Weighted(Alias),
}

impl UserPicker {
    fn new(w: &Workload) -> Self {
        let n = w.users.count;
        match w.users.distribution {
            UserDistribution::Zipf { exponent } if n > 1 => {
                let weights: Vec<f64> =
                    (1..=n as u64).map(|k| (k as f64).powf(-exponent)).collect();
                match Alias::new(&weights) {
                    Some(a) => UserPicker::Weighted(a),
                    // Weights underflowed to zero for every user but the first few:
                    // impossible with the validated exponent range, but degrade gently.
                    None => UserPicker::Uniform(n as u64),
                }
            }
            _ => UserPicker::Uniform(n as u64),
        }
    }

    #[inline]
    fn pick(&self, rng: &mut Rng) -> u32 {
        match self {
            UserPicker::Uniform(1) => 0,
            UserPicker::Uniform(n) => rng.below(*n) as u32,
            UserPicker::Weighted(a) => a.sample(rng),
        }
    }
}

/// The inverse of a phase's expected-count function: seconds into the phase at which
/// `x` arrivals are expected.
#[derive(Debug, Clone, Copy)]
struct Ramp {
    r0: f64,
    /// Half the rate's slope: `Λ(t) = r0 t + a t²`.
    a: f64,
    total: f64,
}

impl Ramp {
    fn new(p: &Phase) -> Self {
        let d = p.duration as f64 / SECOND as f64;
        Self {
            r0: p.rate,
            a: (p.rate_end - p.rate) / (2.0 * d),
            total: p.expected_arrivals(),
        }
    }

    /// Seconds into the phase of expected count `x` (`x` in `[0, total]`).
    #[inline]
    fn at(&self, x: f64) -> f64 {
        // t = 2x / (r0 + sqrt(r0² + 4ax)): stable for a → 0 and for r0 = 0.
        let disc = (self.r0 * self.r0 + 4.0 * self.a * x).max(0.0);
        let denom = self.r0 + disc.sqrt();
        if denom > 0.0 { 2.0 * x / denom } else { 0.0 }
    }

    fn rate_at(&self, secs: f64) -> f64 {
        self.r0 + 2.0 * self.a * secs
    }
}

/// The draws every arrival process shares: who sends each arrival, and to which
/// endpoint, each from its own PRNG stream; the arrivals so far.
struct Draw {
    users: UserPicker,
    users_rng: Rng,
    endpoints: Option<Alias>,
    endpoints_rng: Rng,
    list: Vec<Arrival>,
}

impl Draw {
    /// The next arrival's user.
    #[inline]
    fn user(&mut self) -> u32 {
        self.users.pick(&mut self.users_rng)
    }

    /// Records an arrival of `user` at `at`, drawing its endpoint.
    #[inline]
    fn push_for(&mut self, at: Nanos, user: u32) {
        let endpoint = self
            .endpoints
            .as_ref()
            .map_or(0, |a| a.sample(&mut self.endpoints_rng));
        self.list.push(Arrival { at, user, endpoint });
    }

    /// Records an arrival at `at`, drawing its user, then its endpoint.
    #[inline]
    fn push(&mut self, at: Nanos) {
        let user = self.user();
        self.push_for(at, user);
    }
}

/// One phase being generated: its ramp, and its bounds in absolute time.
struct PhaseClock<'a> {
    phase: &'a Phase,
    ramp: Ramp,
}

impl PhaseClock<'_> {
    /// The absolute instant `secs` into the phase, `None` past its end.
    fn to_abs(&self, secs: f64) -> Option<Nanos> {
        let t = self.phase.start + (secs * SECOND as f64).round() as Nanos;
        (t < self.phase.end()).then_some(t)
    }
}

/// Generates the arrivals of workload `w` for `seed`.
pub fn generate(w: &Workload, seed: u64) -> Arrivals {
    let mut times = Rng::new(seed, STREAM_TIMES);
    let weights: Vec<f64> = w.endpoints.iter().map(|e| e.weight).collect();
    let expected = w.expected_arrivals().min(crate::workload::MAX_ARRIVALS);
    let mut draw = Draw {
        users: UserPicker::new(w),
        users_rng: Rng::new(seed, STREAM_USERS),
        endpoints: Alias::new(&weights),
        endpoints_rng: Rng::new(seed, STREAM_ENDPOINTS),
        list: Vec::with_capacity((expected * 1.01) as usize + 16),
    };
    let mut phase_starts = Vec::with_capacity(w.phases.len() + 1);
    for phase in &w.phases {
        phase_starts.push(draw.list.len());
        let clock = PhaseClock {
            phase,
            ramp: Ramp::new(phase),
        };
        match w.process {
            Process::Constant => constant(&clock, &mut draw),
            Process::Poisson => poisson(&clock, &mut times, &mut draw),
            Process::OnOff { on, off } => on_off(&clock, (on, off), seed, &mut times, &mut draw),
            Process::Boundary { window, spread } => boundary(&clock, window, spread, &mut draw),
        }
    }
    phase_starts.push(draw.list.len());
    Arrivals {
        list: draw.list,
        phase_starts,
        users: w.users.count,
        endpoints: w.endpoints.len() as u32,
    }
}

/// Evenly spaced arrivals at the ramp's rate.
fn constant(clock: &PhaseClock<'_>, draw: &mut Draw) {
    let mut k = 0u64;
    while (k as f64) < clock.ramp.total {
        let Some(at) = clock.to_abs(clock.ramp.at(k as f64)) else {
            break;
        };
        draw.push(at);
        k += 1;
    }
}

/// A Poisson process at the ramp's rate.
fn poisson(clock: &PhaseClock<'_>, times: &mut Rng, draw: &mut Draw) {
    let mut x = times.exp1();
    while x < clock.ramp.total {
        let Some(at) = clock.to_abs(clock.ramp.at(x)) else {
            break;
        };
        draw.push(at);
        x += times.exp1();
    }
}

/// Users on for `on` and off for `off` nanoseconds, each at its own offset in the
/// cycle, averaging the ramp's rate: candidates at the "on" rate, kept when their user
/// is on (thinning).
fn on_off(
    clock: &PhaseClock<'_>,
    (on, off): (Nanos, Nanos),
    seed: u64,
    times: &mut Rng,
    draw: &mut Draw,
) {
    let cycle = on + off;
    let boost = cycle as f64 / on as f64;
    let mut x = times.exp1();
    while x < clock.ramp.total * boost {
        let Some(at) = clock.to_abs(clock.ramp.at(x / boost)) else {
            break;
        };
        let user = draw.user();
        let offset = mix(seed, STREAM_ONOFF, user as u64) % cycle;
        if (at + offset) % cycle < on {
            draw.push_for(at, user);
        }
        x += times.exp1();
    }
}

/// Bursts just before and just after every other window edge, `spread` wide, two
/// windows' worth of the ramp's rate each. Edges at odd multiples of the window,
/// aligned to the clock's epoch like the fixed window's own boundaries.
fn boundary(clock: &PhaseClock<'_>, window: Nanos, spread: Nanos, draw: &mut Draw) {
    let phase = clock.phase;
    let first = phase.start.div_ceil(window);
    let first = if first % 2 == 1 { first } else { first + 1 };
    let mut edge_index = first;
    while let Some(edge) = edge_index.checked_mul(window) {
        if edge >= phase.end() {
            break;
        }
        let secs = (edge - phase.start) as f64 / SECOND as f64;
        let per_edge = clock.ramp.rate_at(secs).max(0.0) * 2.0 * window as f64 / SECOND as f64;
        let n = per_edge.round() as u64;
        let before = n / 2;
        let after = n - before;
        let mut emit = |at: Nanos| {
            if at >= phase.start && at < phase.end() {
                draw.push(at);
            }
        };
        for i in 0..before {
            emit(edge - spread + (i as u128 * spread as u128 / before as u128) as Nanos);
        }
        for i in 0..after {
            emit(edge + (i as u128 * spread as u128 / after as u128) as Nanos);
        }
        edge_index += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Workload;

    #[test]
    fn seed_is_evenly_spaced() {
        let w = Workload::load("seed").unwrap();
        let a = generate(&w, 1);
        assert_eq!(a.list.len(), 4200);
        assert_eq!(a.phase_starts, vec![0, 600, 2400, 4200]);
        assert_eq!(a.list[0].at, 0);
        assert_eq!(a.list[1].at, SECOND / 10);
        assert_eq!(a.list[600].at, 60 * SECOND);
        assert_eq!(a.list[601].at, 60 * SECOND + 33_333_333);
        assert_eq!(a.list[2400].at, 120 * SECOND);
        assert!(a.list.windows(2).all(|p| p[0].at < p[1].at));
        assert!(a.list.iter().all(|x| x.user == 0 && x.endpoint == 0));
    }

    #[test]
    fn same_seed_same_arrivals() {
        let w = Workload::load("api-mix").unwrap();
        let mut w = w;
        // A short version keeps the test quick in debug builds.
        for p in &mut w.phases {
            p.duration /= 20;
        }
        let mut start = 0;
        for p in &mut w.phases {
            p.start = start;
            start += p.duration;
        }
        let a = generate(&w, 9);
        assert_eq!(a, generate(&w, 9));
        assert_ne!(a.list, generate(&w, 10).list);
        assert!(a.list.windows(2).all(|p| p[0].at <= p[1].at));
        // Zipf: user 0 is the heaviest; every endpoint is used.
        let mut per_user = vec![0u32; 10_000];
        let mut per_endpoint = [0u32; 5];
        for x in &a.list {
            per_user[x.user as usize] += 1;
            per_endpoint[x.endpoint as usize] += 1;
        }
        assert_eq!(per_user.iter().max(), Some(&per_user[0]));
        assert!(per_endpoint.iter().all(|c| *c > 0));
        // Poisson around the expected count (66,000): within 2%.
        let n = a.list.len() as f64;
        assert!((n - 66_000.0).abs() < 1_320.0, "{n}");
    }

    #[test]
    fn ramps_follow_the_rate() {
        let text = r#"
[[phase]]
name = "ramp"
duration = "100s"
rate = 0
ramp_to = 100
[[endpoint]]
path = "/"
limit = 1
window = "1s"
"#;
        let w = Workload::parse(text, "r.toml", "r").unwrap();
        let a = generate(&w, 1);
        assert_eq!(a.list.len(), 5000);
        // Λ(t) = t²/2: half the arrivals come after t = √5000 ≈ 70.7 s.
        let median = a.list[2500].at as f64 / SECOND as f64;
        assert!((median - 70.71).abs() < 0.05, "{median}");
    }

    #[test]
    fn boundary_bursts_straddle_edges() {
        let w = Workload::load("boundary").unwrap();
        let a = generate(&w, 1);
        // Probe: edges at 10, 30, 50 s with 20 requests each; flood: 70, 90, 110 s with 60.
        assert_eq!(a.phase_starts, vec![0, 60, 240]);
        for x in &a.list {
            let edge = (x.at + SECOND) / (10 * SECOND) * (10 * SECOND);
            let d = x.at.abs_diff(edge);
            assert!(d <= 100_000_000, "{} is not near an edge", x.at);
            assert_eq!((edge / (10 * SECOND)) % 2, 1);
        }
        let before_first = a.list.iter().filter(|x| x.at < 10 * SECOND).count();
        assert_eq!(before_first, 10);
    }

    #[test]
    fn onoff_users_rest() {
        let w = Workload::load("onoff").unwrap();
        let a = generate(&w, 3);
        let cycle = 20 * SECOND;
        for x in &a.list {
            let offset = mix(3, STREAM_ONOFF, x.user as u64) % cycle;
            assert!((x.at + offset) % cycle < 2 * SECOND);
        }
        // Average rate kept: 25×120 + 50×120 + 100×60 = 15,000 expected, within 5%.
        let n = a.list.len() as f64;
        assert!((n - 15_000.0).abs() < 750.0, "{n}");
    }
}

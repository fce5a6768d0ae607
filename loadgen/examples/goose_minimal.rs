//! goose's own minimal closed-loop load test, for comparison with `ratelab load
//! --driver goose`: one transaction, `GET /api/orders`, repeated by every user as fast
//! as answers come back — no pacing, no schedule, no per-request records of ours. What
//! it reaches against the mock backend is goose's own ceiling on this machine
//! (scripts/ceiling.sh runs it beside wrk when `GOOSE_MINIMAL=1`).
//!
//!     cargo run --release -p loadgen --features http --example goose_minimal -- \
//!         --host http://127.0.0.1:8081 --users 64 --increase-rate 1000 --run-time 5s
//!
//! Every option is goose's (`--help`); goose prints its metrics (requests per second
//! in the "Aggregated" row) at the end.

use goose::prelude::{
    GooseAttack, GooseError, GooseUser, Scenario, Transaction, TransactionResult, scenario,
    transaction,
};

async fn orders(user: &mut GooseUser) -> TransactionResult {
    let _goose = user.get("/api/orders").await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    GooseAttack::initialize()?
        .register_scenario(scenario!("orders").register_transaction(transaction!(orders)))
        .execute()
        .await?;
    Ok(())
}

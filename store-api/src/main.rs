//! Placeholder until the store-api issue builds the per-tenant HTTP service.

fn main() {
    eprintln!("store-api is not built yet: see the store-api issue");
    std::process::exit(2);
}

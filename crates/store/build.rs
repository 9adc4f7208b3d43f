// `sqlx::migrate!` embeds the migration folders; rebuild when a file in them changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

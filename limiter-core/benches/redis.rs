//! Redis store benchmark (see notes/redis-readme.md); the measurements come in the next commit.

fn main() {}

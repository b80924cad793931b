// Stands in for fast-check in the bundle (scripts/bundle.mjs). effect's Schema imports it for
// `Arbitrary.make` (property-based test data), which owrt never calls: bundled, its ~150 KB of modules
// would be compiled and evaluated at every start for nothing. Code that did build an Arbitrary would fail
// in the bundled CLI with "FastCheck.<name> is not a function"; tests run on the sources, with the real one.
export {}

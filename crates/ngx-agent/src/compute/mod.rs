//! Pure computations (placeholder while the module is written).

"""The battery passport: typed credentials along the value chain, the hash-linked chain of
custody, its audit, and mass-balance tracing of material batches. See ``vocab/PASSPORT.md``."""

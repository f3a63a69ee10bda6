import ArgumentParser
import Stages

/// The `vigil-enrich` executable; all of it lives in the Stages library, where tests reach it too.
@main extension EnrichCommand {}

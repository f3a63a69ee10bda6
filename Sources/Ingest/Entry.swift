import ArgumentParser
import Stages

/// The `vigil-ingest` executable; all of it lives in the Stages library, where tests reach it too.
@main extension IngestCommand {}

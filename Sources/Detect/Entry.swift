import ArgumentParser
import Stages

/// The `vigil-detect` executable; all of it lives in the Stages library, where tests reach it too.
@main extension DetectCommand {}

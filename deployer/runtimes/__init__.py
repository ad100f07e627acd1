"""Runtimes the deployer hands an app to: one package per engine."""

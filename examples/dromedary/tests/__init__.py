"""dromedary's tests. ``python3 -m unittest`` (from the sample's root) runs the unit tests;
``TARGET_URL=... python3 -m tests.e2e`` runs the end-to-end suite against a deployment."""

"""Testkits of the built-in connectors, one module per connector type (kits/<type>.py, a
`testkit()` function). Each connector names its own as Connector.testkit."""

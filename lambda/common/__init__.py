"""Code shared by the control-plane Lambda functions (deployed with each function: CodeUri is lambda/)."""

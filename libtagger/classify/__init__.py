"""Models at inference: loading model folders by kind, the scaler, voting, the open-set verdict.

Never imports libtagger.training (tests/test_layers.py checks).
"""

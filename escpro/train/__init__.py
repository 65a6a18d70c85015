"""Training supporter models on ESC-Pro with TRL: SFT, DPO (CSO), IPO, SimPO, KTO, ORPO."""

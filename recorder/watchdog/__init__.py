"""The recording-chain watchdog: checks (pure), the dialing gate (pure), and the runner
that feeds them from the live service (AMI, the database, the disks, the canary)."""

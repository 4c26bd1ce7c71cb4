"""How any model learns here, teacher and students alike: the LightningModule and the Trainer."""

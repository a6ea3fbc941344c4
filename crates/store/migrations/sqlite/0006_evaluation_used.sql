-- Evaluation use a device reported at registration (A-3), in milliseconds: the manager's
-- instance view shows it, so a device whose evaluation was reset or tampered with is seen.
-- NULL for devices that did not report it (registered before, or older agents).
ALTER TABLE instances ADD COLUMN evaluation_used_ms INTEGER;

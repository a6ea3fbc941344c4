-- ID certificate renewal (A-8): the key an instance had before its last renewal stays accepted
-- until the new key signs a request, so a renewal whose answer was lost never locks a device out.
ALTER TABLE instances ADD COLUMN previous_key_algorithm TEXT;
ALTER TABLE instances ADD COLUMN previous_public_key TEXT;

-- Languages (issue 8): the interface language a user chose at sign-up or in
-- Settings (en, es, fr, de). NULL: not chosen; the browser's language is used.
-- Report PDFs a user downloads are written in it.
ALTER TABLE users ADD COLUMN language TEXT;

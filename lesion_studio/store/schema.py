"""The database schema and its migrations.

``PRAGMA user_version`` holds the number of migrations applied. A migration is appended, never
edited, so any older project opens by running the ones it lacks, inside one transaction.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: the whole initial schema, including the tables the synthesis and classifier work fill.
    """
    CREATE TABLE images (
        id              INTEGER PRIMARY KEY,
        path            TEXT NOT NULL UNIQUE,
        name            TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        width           INTEGER NOT NULL,
        height          INTEGER NOT NULL,
        modality        TEXT NOT NULL DEFAULT '',
        bits_stored     INTEGER NOT NULL DEFAULT 8,
        body_part       TEXT NOT NULL DEFAULT '',
        view            TEXT NOT NULL DEFAULT '',
        label           TEXT NOT NULL DEFAULT 'unreviewed'
                        CHECK (label IN ('lesion', 'normal', 'unreviewed')),
        split           TEXT NOT NULL DEFAULT 'unassigned'
                        CHECK (split IN ('train', 'val', 'test', 'unassigned')),
        group_key       TEXT NOT NULL DEFAULT '',
        exclusions      TEXT NOT NULL DEFAULT '',
        exclusion_note  TEXT NOT NULL DEFAULT '',
        notes           TEXT NOT NULL DEFAULT '',
        lesion_type     TEXT NOT NULL DEFAULT '',
        extra           TEXT NOT NULL DEFAULT '{}',
        added_at        TEXT NOT NULL,
        modified_at     TEXT NOT NULL
    );
    CREATE INDEX images_sha ON images(sha256);
    CREATE INDEX images_label ON images(label, body_part);

    CREATE TABLE lesion_boxes (
        id          INTEGER PRIMARY KEY,
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        author      TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        CHECK (x0 < x1 AND y0 < y1)
    );
    CREATE INDEX lesion_boxes_image ON lesion_boxes(image_id);

    CREATE TABLE normal_patches (
        id          INTEGER PRIMARY KEY,
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        author      TEXT NOT NULL DEFAULT '',
        created_at  TEXT NOT NULL,
        modified_at TEXT NOT NULL,
        CHECK (x0 < x1 AND y0 < y1)
    );
    CREATE INDEX normal_patches_image ON normal_patches(image_id);

    CREATE TABLE models (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL,
        path        TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        body_parts  TEXT NOT NULL DEFAULT '',
        config      TEXT NOT NULL DEFAULT '{}',
        metadata    TEXT NOT NULL DEFAULT '{}',
        created_at  TEXT NOT NULL
    );

    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,
        name        TEXT NOT NULL DEFAULT '',
        status      TEXT NOT NULL DEFAULT 'running',
        model_id    INTEGER REFERENCES models(id) ON DELETE SET NULL,
        config      TEXT NOT NULL DEFAULT '{}',
        metrics     TEXT NOT NULL DEFAULT '{}',
        output_dir  TEXT NOT NULL DEFAULT '',
        started_at  TEXT NOT NULL,
        finished_at TEXT
    );

    CREATE TABLE synthetic_samples (
        id              INTEGER PRIMARY KEY,
        source_image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        model_id        INTEGER REFERENCES models(id) ON DELETE SET NULL,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        n               REAL NOT NULL,
        seed            INTEGER NOT NULL DEFAULT 0,
        path            TEXT NOT NULL DEFAULT '',
        score           REAL,
        status          TEXT NOT NULL DEFAULT 'candidate'
                        CHECK (status IN ('candidate', 'accepted', 'rejected')),
        batch           TEXT NOT NULL DEFAULT '',
        provenance      TEXT NOT NULL DEFAULT '{}',
        created_at      TEXT NOT NULL
    );
    CREATE INDEX synthetic_source ON synthetic_samples(source_image_id);

    CREATE TABLE realism_ratings (
        id          INTEGER PRIMARY KEY,
        rater       TEXT NOT NULL,
        session     TEXT NOT NULL,
        item_kind   TEXT NOT NULL CHECK (item_kind IN ('real', 'synthetic')),
        item_ref    TEXT NOT NULL,
        answer      TEXT NOT NULL CHECK (answer IN ('real', 'synthetic')),
        created_at  TEXT NOT NULL
    );

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: several readers, lesion types per box, ruler measurements (issue 29).
    #    A box's reader is its ``author``. Boxes of an older project take their image's lesion type
    #    (FracAtlas's labels.csv named one per image), so an upgraded project keeps what it knew.
    """
    ALTER TABLE lesion_boxes ADD COLUMN lesion_type TEXT NOT NULL DEFAULT '';
    UPDATE lesion_boxes SET lesion_type =
        COALESCE((SELECT i.lesion_type FROM images i WHERE i.id = lesion_boxes.image_id), '');
    CREATE INDEX lesion_boxes_author ON lesion_boxes(author);

    CREATE TABLE reader_labels (
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        reader      TEXT NOT NULL,
        label       TEXT NOT NULL CHECK (label IN ('lesion', 'normal', 'unreviewed')),
        labelled_at TEXT NOT NULL,
        PRIMARY KEY (image_id, reader)
    );

    CREATE TABLE measurements (
        id             INTEGER PRIMARY KEY,
        image_id       INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        spacing_row    REAL,
        spacing_col    REAL,
        spacing_source TEXT NOT NULL DEFAULT '',
        author         TEXT NOT NULL DEFAULT '',
        created_at     TEXT NOT NULL,
        modified_at    TEXT NOT NULL,
        CHECK (x0 != x1 OR y0 != y1),
        CHECK ((spacing_row IS NULL) = (spacing_col IS NULL))
    );
    CREATE INDEX measurements_image ON measurements(image_id);
    """,
    # 3: assisted reading (issue 28). A detector's box proposals live apart from the annotations:
    #    a proposal becomes a lesion box only when a reader accepts it, and the box then records
    #    where it came from (``lesion_boxes.provenance``). ``restore`` holds what an accept changed
    #    besides the box (the image's and the reader's label), so the accept can be undone exactly.
    #    ``image_scores`` keeps each model's image score, for the review queue and the browser.
    """
    ALTER TABLE lesion_boxes ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}';

    CREATE TABLE proposals (
        id          INTEGER PRIMARY KEY,
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        model_id    INTEGER REFERENCES models(id) ON DELETE SET NULL,
        model_name  TEXT NOT NULL,
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        score       REAL NOT NULL,
        image_score REAL NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'accepted', 'rejected')),
        created_at  TEXT NOT NULL,
        decided_by  TEXT NOT NULL DEFAULT '',
        decided_at  TEXT,
        box_id      INTEGER,
        restore     TEXT NOT NULL DEFAULT '{}',
        CHECK (x0 < x1 AND y0 < y1)
    );
    CREATE INDEX proposals_image ON proposals(image_id, state);
    CREATE INDEX proposals_model ON proposals(model_id, state);

    CREATE TABLE image_scores (
        image_id    INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        model_id    INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
        score       REAL NOT NULL,
        scored_at   TEXT NOT NULL,
        PRIMARY KEY (image_id, model_id)
    );
    CREATE INDEX image_scores_model ON image_scores(model_id, score);
    """,
    # 4: where the scoring classifier looked (issue 23). A synthetic sample's score is stored with
    #    the peak of the same classifier's localisation map (its lesion map, or CAM), in image
    #    pixels, so the gallery and the experiment can say whether the detector's evidence sits on
    #    the painted lesion or elsewhere without scoring again. NULL: scored without a map.
    """
    ALTER TABLE synthetic_samples ADD COLUMN map_peak_x REAL;
    ALTER TABLE synthetic_samples ADD COLUMN map_peak_y REAL;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
